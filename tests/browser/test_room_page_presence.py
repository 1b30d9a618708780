"""The room page's presence and typing: who is online, joins and leaves, who is typing, and screenshots of a
room with both. In a real headless Chromium against ``server.py`` running as a real process (the fixtures of
``tests/browser/conftest.py``)."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from tests.support.browser import (
    PRESENCE_WAIT_MS,
    RECONNECT_WAIT_MS,
    WAIT_MS,
    ProxyThread,
    hide,
    named,
    open_room,
    post_many,
    send,
    show,
)
from tests.support.room_page import edit_last_own, message

pytestmark = pytest.mark.timeout(180)

THUMBS_UP = "\N{THUMBS UP SIGN}"


def test_two_pages_see_each_other_online_and_a_closed_page_leaves(new_context, server, room):
    ann = open_room(new_context(), server.url, room)
    named(ann, "ann")
    expect(ann.locator("#presence-summary")).to_have_text("1 online: ann", timeout=PRESENCE_WAIT_MS)
    hide(ann)
    bob = open_room(new_context(), server.url, room)
    named(bob, "bob")
    for page in (ann, bob):
        expect(page.locator("#presence-summary")).to_have_text("2 online: ann, bob", timeout=PRESENCE_WAIT_MS)
        expect(page.locator("#presence-list li .who")).to_have_text(["ann", "bob"])
    expect(bob.locator("#presence-list li").filter(has_text="bob")).to_contain_text("(you)")
    # Ann saw bob come; neither sees themselves come, and bob, who came second, sees no one "join".
    expect(ann.locator(".note")).to_have_text(["bob joined"])
    assert bob.locator(".note").count() == 0

    bob.close()
    expect(ann.locator("#presence-summary")).to_have_text("1 online: ann", timeout=PRESENCE_WAIT_MS)
    expect(ann.locator(".note")).to_have_text(["bob joined", "bob left"])
    # Joins and leaves are not messages: no item in the log, nothing unread, and the socket still resumes
    # from the last message (a message after them arrives once, and the notes stay put).
    assert ann.locator("#chat > li").count() == 0
    assert ann.title() == f"{room} · rooms"
    show(ann)
    server.post(room, "carl", "after the notes")
    expect(ann.locator("#chat > li .text")).to_have_text(["after the notes"])
    expect(ann.locator("#notes-before .note")).to_have_text(["bob joined", "bob left"])


def test_a_page_announces_itself_again_after_a_reconnect(new_context, server, room):
    proxy = ProxyThread(server.port)
    try:
        ann = open_room(new_context(), proxy.url, room)
        named(ann, "ann")
        bob = open_room(new_context(), server.url, room)
        named(bob, "bob")
        expect(bob.locator("#presence-summary")).to_have_text("2 online: ann, bob", timeout=PRESENCE_WAIT_MS)

        proxy.cut()
        expect(bob.locator("#presence-summary")).to_have_text("1 online: bob", timeout=PRESENCE_WAIT_MS)
        proxy.restore()
        expect(ann.locator("#status")).to_have_attribute("data-state", "live", timeout=RECONNECT_WAIT_MS)
        for page in (ann, bob):
            expect(page.locator("#presence-summary")).to_have_text("2 online: ann, bob", timeout=PRESENCE_WAIT_MS)
        expect(bob.locator(".note")).to_have_text(["ann left", "ann joined"])
        # Ann's new socket starts afresh: its first presence frame is how the room is, not bob "joining".
        expect(ann.locator(".note")).to_have_text(["bob joined"])
    finally:
        proxy.close()


def test_a_join_after_a_message_is_noted_after_it_and_the_log_stays_in_order(new_context, server, room):
    ann = open_room(new_context(), server.url, room)
    named(ann, "ann")
    server.post(room, "carl", "before bob")
    expect(ann.locator("#chat > li .text")).to_have_text(["before bob"])
    bob = open_room(new_context(), server.url, room)
    named(bob, "bob")
    expect(ann.locator("#chat > .notes").last.locator(".note")).to_have_text(["bob joined"], timeout=PRESENCE_WAIT_MS)
    send(bob, "bob", "hello, I am bob")
    expect(ann.locator("#chat > li .text")).to_have_text(["before bob", "hello, I am bob"])
    # Bob's first message keeps its header: the note parts it from what came before.
    expect(ann.locator("#chat > li").last.locator(".handle")).to_be_visible()


def test_typing_shows_in_the_other_page_and_never_in_its_own(new_context, server, room):
    ann = open_room(new_context(), server.url, room)
    named(ann, "ann")
    bob = open_room(new_context(), server.url, room)
    named(bob, "bob")
    expect(ann.locator("#presence-summary")).to_contain_text("bob", timeout=PRESENCE_WAIT_MS)

    bob.click("#message")
    bob.keyboard.type("hel")
    expect(ann.locator("#typing")).to_have_text("bob is typing…")
    expect(bob.locator("#typing")).to_have_text("")
    # It goes by itself a few seconds after the last keystroke ...
    expect(ann.locator("#typing")).to_have_text("", timeout=8_000)
    assert bob.locator("#typing").inner_text() == ""

    # ... and at once when bob's message arrives.
    bob.keyboard.type("lo")
    expect(ann.locator("#typing")).to_have_text("bob is typing…")
    bob.keyboard.press("Enter")
    expect(ann.locator("#chat > li .text")).to_have_text(["hello"])
    expect(ann.locator("#typing")).to_have_text("", timeout=1_000)


def test_the_typing_line_names_two_and_counts_the_rest(new_context, server, room):
    page = open_room(new_context(), server.url, room)
    lines = page.evaluate(
        """async () => {
            const { typingWords } = await import("/static/room/typing.js");
            const line = (handles) => {
                const p = document.createElement("p");
                p.append(...typingWords(handles));
                return p.textContent;
            };
            return [[], ["ann"], ["ann", "bob"], ["ann", "bob", "carl"], ["ann", "bob", "carl", "dan"]].map(line);
        }"""
    )
    assert lines == [
        "",
        "ann is typing…",
        "ann and bob are typing…",
        "ann, bob and carl are typing…",
        "ann, bob and 2 others are typing…",
    ]


# The first message on screen, and where its text is (a message that comes to follow one by the same person
# loses its header; its words stay where they were).


def test_screenshots_of_a_room_with_presence_and_typing(browser, server, tmp_path):
    """The pictures in the README: a room with a few messages (a reply, formatting, an edit, reactions), three
    people in it, one of them typing. They are written to a temporary directory, or with
    ``ROOMS_SCREENSHOTS=docs`` to the README's own."""
    room = "release-day"
    shots = os.environ.get("ROOMS_SCREENSHOTS") or str(tmp_path)
    os.makedirs(shots, exist_ok=True)
    post_many(server, room, ["Morning! Is the deploy still on for today?"], "ann")
    contexts = []
    try:
        for handle in ("ann", "bob"):
            context = browser.new_context(viewport={"width": 900, "height": 700})
            context.set_default_timeout(WAIT_MS)
            contexts.append(context)
            named(open_room(context, server.url, room), handle)
        ann, bob = (context.pages[0] for context in contexts)
        question = message(bob, "Morning! Is the deploy still on for today?")
        question.hover()
        question.get_by_role("button", name="Reply to ann").click()
        bob.keyboard.type("Yes, at **15:00**. Notes are on https://example.org/runbook.")
        bob.keyboard.press("Enter")
        send(ann, "ann", "@carl can you watch the dashbords while it rolls out?")
        expect(message(ann, "@carl can you watch the dashbords while it rolls out?")).to_have_count(1)
        edit_last_own(ann, "@carl can you watch the dashboards while it rolls out?")
        post_many(
            server, room, ["On it, `api-latency` and `errors` are up.", "I'll post here if anything looks odd."], "carl"
        )
        for page in (ann, bob):
            on_it = message(page, "On it, api-latency and errors are up.")
            on_it.hover()
            on_it.get_by_role("button", name="React to this message").click()
            on_it.get_by_role("button", name=THUMBS_UP, exact=True).click()
        expect(message(ann, "On it, api-latency and errors are up.").locator(".reaction")).to_have_text(
            [f"{THUMBS_UP}2"]
        )
        for name, viewport, scheme, mobile in (
            ("room-desktop.png", {"width": 1200, "height": 800}, "light", False),
            ("room-phone.png", {"width": 390, "height": 844}, "dark", True),
        ):
            context = browser.new_context(
                viewport=viewport, color_scheme=scheme, is_mobile=mobile, has_touch=mobile, device_scale_factor=1
            )
            context.set_default_timeout(WAIT_MS)
            contexts.append(context)
            carl = open_room(context, server.url, room)
            named(carl, "carl")
            expect(carl.locator("#presence-summary")).to_have_text("3 online: ann, bob, carl", timeout=PRESENCE_WAIT_MS)
            bob.click("#message")
            bob.keyboard.type("Rolling out now")
            expect(carl.locator("#typing")).to_have_text("bob is typing…")
            expect(carl.locator("#chat > li.mention")).to_have_count(1)
            expect(carl.locator("#chat > li .edited-mark")).to_have_count(1)
            expect(carl.locator("#chat > li .reply-quote")).to_have_count(1)
            expect(carl.locator("#chat > li .reaction")).to_have_text([f"{THUMBS_UP}2"])
            expect(carl.locator("#chat > li .text a")).to_have_attribute("href", "https://example.org/runbook")
            assert carl.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            carl.screenshot(path=os.path.join(shots, name))
            bob.fill("#message", "")
            carl.close()
            expect(ann.locator("#presence-summary")).to_have_text("2 online: ann, bob", timeout=PRESENCE_WAIT_MS)
            # The next one sees typing start afresh.
            bob.wait_for_timeout(2_200)
    finally:
        for context in contexts:
            context.close()
    for name in ("room-desktop.png", "room-phone.png"):
        with open(os.path.join(shots, name), "rb") as image:
            assert image.read(8) == b"\x89PNG\r\n\x1a\n"

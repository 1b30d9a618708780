"""The room page's presence, typing, scrollback, unread count, mentions and links, in a real headless
Chromium against ``server.py`` running as a real process (the fixtures of ``tests/browser/conftest.py``)."""

from __future__ import annotations

import os
import re
import time
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import Page, expect

from rooms.protocol import ProtocolError, _check_handle
from tests.support.browser import RECONNECT_WAIT_MS, WAIT_MS, ProxyThread, RoomsServer, open_room, send

pytestmark = pytest.mark.timeout(180)

# The server coalesces presence frames to two a second; a page that closed leaves at once.
PRESENCE_WAIT_MS = 3_000


def post_many(server: RoomsServer, room: str, texts: list[str], handle: str = "ann") -> None:
    """Posts each text in order, waiting out the per-address limit (429) where a long run meets it."""
    for text in texts:
        for _ in range(200):
            try:
                server.post(room, handle, text)
                break
            except urllib.error.HTTPError as refused:
                if refused.code != 429:
                    raise
                time.sleep(0.1)
        else:
            raise AssertionError(f"still rate limited posting {text!r}")


def named(page: Page, handle: str) -> None:
    """Types a name and leaves the field, as a reader does: the page announces it (hello) on change."""
    page.fill("#handle", handle)
    page.press("#handle", "Enter")


def hide(page: Page) -> None:
    """Headless Chromium cannot hide a tab: the page is told it is hidden, as the browser would tell it."""
    page.evaluate(
        """() => {
            Object.defineProperty(document, "visibilityState", { get: () => "hidden", configurable: true });
            document.dispatchEvent(new Event("visibilitychange"));
        }"""
    )


def show(page: Page) -> None:
    page.evaluate(
        """() => {
            Object.defineProperty(document, "visibilityState", { get: () => "visible", configurable: true });
            document.dispatchEvent(new Event("visibilitychange"));
        }"""
    )


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
FIRST_VISIBLE = """() => {
    const log = document.getElementById("log");
    const top = log.getBoundingClientRect().top;
    const item = [...document.querySelectorAll("#chat > li")].find((li) => li.getBoundingClientRect().bottom > top);
    return { id: item.dataset.id, top: item.querySelector(".text").getBoundingClientRect().top };
}"""

SCROLL_TO_TOP = f"""() => {{
    document.getElementById("log").scrollTop = 0;
    return ({FIRST_VISIBLE})();
}}"""


def test_scrolling_to_the_top_loads_older_messages_in_place_until_the_beginning(new_context, server, room):
    texts = [f"message {n}" for n in range(130)]
    post_many(server, room, texts)
    page = open_room(new_context(), server.url, room)
    history_requests: list[str] = []
    page.on("request", lambda request: history_requests.append(request.url) if "/api/rooms/" in request.url else None)
    expect(page.locator("#chat > li")).to_have_count(50)
    expect(page.locator("#room-start")).to_be_hidden()

    shown = 50
    while page.locator("#room-start").is_hidden():
        at_top = page.evaluate(SCROLL_TO_TOP)  # the first message on screen once at the top, and where it is
        expect(page.locator("#chat > li")).not_to_have_count(shown)
        shown = page.locator("#chat > li").count()
        where = "id => document.querySelector(`#chat > li[data-id='${id}'] .text`).getBoundingClientRect().top"
        now = page.evaluate(where, at_top["id"])
        assert abs(now - at_top["top"]) <= 3, (now, at_top)
        assert len(history_requests) <= 3

    assert shown == 130
    expect(page.locator("#chat > li .text")).to_have_text(texts)
    ids = page.locator("#chat > li").evaluate_all("items => items.map((li) => li.dataset.id)")
    assert len(set(ids)) == 130
    # Two pages of 50 and 30, each asked for once, before the oldest message shown then.
    assert len(history_requests) == 2 and all("limit=50" in url and "before=" in url for url in history_requests)
    expect(page.locator("#older")).to_be_hidden()
    page.evaluate("document.getElementById('log').scrollTop = 0")
    page.wait_for_timeout(300)
    assert len(history_requests) == 2


def test_older_messages_that_fail_to_load_can_be_tried_again(new_context, server, room):
    texts = [f"message {n}" for n in range(60)]
    post_many(server, room, texts)
    page = open_room(new_context(), server.url, room)
    page.route("**/api/rooms/**", lambda route: route.fulfill(status=503, body='{"error": "down"}'))
    page.evaluate("document.getElementById('log').scrollTop = 0")
    expect(page.locator("#older-failed")).to_be_visible()
    expect(page.locator("#older")).to_have_text("Try again")
    page.unroute("**/api/rooms/**")
    page.focus("#older")
    page.keyboard.press("Enter")
    expect(page.locator("#room-start")).to_be_visible()
    expect(page.locator("#older-failed")).to_be_hidden()
    expect(page.locator("#chat > li .text")).to_have_text(texts)


def test_addresses_become_links_and_markup_or_other_schemes_do_not(new_context, server, room):
    message = (
        "see https://example.org/wiki/Tornado_(web_server). or (http://example.com/a?b=1), "
        "not javascript:alert(document.domain) nor data:text/html,<b>x</b> "
        "<script>document.body.dataset.xss='s'</script><img src=x onerror=\"document.body.dataset.xss='i'\">"
    )
    server.post(room, "ann", message)
    context = new_context()
    violations: list[str] = []
    context.on("console", lambda line: violations.append(line.text) if "Content Security Policy" in line.text else None)
    page = open_room(context, server.url, room)
    server.post(room, "bob", message)
    expect(page.locator("#chat > li")).to_have_count(2)
    for item in (page.locator("#chat > li").first, page.locator("#chat > li").last):  # rendered, then live
        expect(item.locator(".text")).to_have_text(message)
        links = item.locator(".text a")
        expect(links).to_have_count(2)
        assert [links.nth(n).get_attribute("href") for n in range(2)] == [
            "https://example.org/wiki/Tornado_(web_server)",
            "http://example.com/a?b=1",
        ]
        assert links.all_inner_texts() == ["https://example.org/wiki/Tornado_(web_server)", "http://example.com/a?b=1"]
        for n in range(2):
            assert links.nth(n).get_attribute("rel") == "noopener noreferrer"
            assert links.nth(n).get_attribute("target") == "_blank"
    unwanted = "#chat script, #chat img, #chat b, #chat a[href^='javascript'], #chat a[href^='data']"
    assert page.locator(unwanted).count() == 0
    assert page.evaluate("document.body.dataset.xss") is None
    assert violations == []


def test_the_title_of_a_hidden_tab_counts_new_messages_from_others(new_context, server, room):
    reader = open_room(new_context(), server.url, room)
    named(reader, "dan")
    title = f"{room} · rooms"
    assert reader.title() == title
    hide(reader)
    for text in ("one", "two", "three"):
        server.post(room, "ann", text)
    expect(reader).to_have_title(f"(3) {title}")
    # Screen readers hear of them too, briefly; the region is polite.
    expect(reader.locator("#announcer")).to_contain_text("ann: three")
    assert reader.locator("#announcer").get_attribute("aria-live") == "polite"
    send(reader, "dan", "my own, not unread")
    expect(reader.locator("#chat > li .text").last).to_have_text("my own, not unread")
    assert reader.title() == f"(3) {title}"
    assert "my own" not in reader.locator("#announcer").inner_text()
    show(reader)
    expect(reader).to_have_title(title)
    server.post(room, "ann", "read as it comes")
    expect(reader.locator("#chat > li .text").last).to_have_text("read as it comes")
    assert reader.title() == title


# A stand-in for the Notification API that records what the page does with it: headless Chromium has no
# desktop to show notifications on.
FAKE_NOTIFICATIONS = """
window.__asked = 0;
window.__notified = [];
window.Notification = class {
    static permission = "default";
    static requestPermission() {
        window.__asked += 1;
        window.Notification.permission = "granted";
        return Promise.resolve("granted");
    }
    constructor(title, options) { window.__notified.push([title, options.body]); }
    addEventListener() {}
    close() {}
};
"""


def test_a_mention_is_highlighted_and_notified_only_once_allowed(new_context, server, room):
    for text in ("hey @Dan, look", "dan without the at", "mail dan@example.org", "@danny is not dan", "(@dan)"):
        server.post(room, "ann", text)
    context = new_context()
    context.add_init_script(FAKE_NOTIFICATIONS)
    page = open_room(context, server.url, room)
    named(page, "dan")
    items = page.locator("#chat > li")
    expect(items).to_have_count(5)
    assert [("mention" in (items.nth(n).get_attribute("class") or "")) for n in range(5)] == [
        True, False, False, False, True,
    ]  # fmt: skip
    assert page.locator("#chat > li.mention").first.evaluate("li => getComputedStyle(li).backgroundColor") not in (
        "rgba(0, 0, 0, 0)",
        "transparent",
    )
    server.post(room, "ann", "@DAN live")
    expect(page.locator("#chat > li").last).to_have_class(re.compile(r"\bmention\b"))

    # Never asked on load; asked when the reader presses the button.
    assert page.evaluate("window.__asked") == 0
    hide(page)
    server.post(room, "ann", "@dan not yet allowed")
    expect(items).to_have_count(7)
    assert page.evaluate("window.__notified") == []
    show(page)
    page.get_by_role("button", name="Notify me of mentions").click()
    expect(page.locator("#notify-mentions")).to_have_attribute("aria-pressed", "true")
    assert page.evaluate("window.__asked") == 1
    server.post(room, "ann", "@dan while you look")
    expect(items).to_have_count(8)
    hide(page)
    server.post(room, "ann", "@dan while away")
    server.post(room, "ann", "not a mention")
    expect(items).to_have_count(10)
    assert page.evaluate("window.__notified") == [[f"ann mentioned you in #{room}", "@dan while away"]]

    # Another name: the highlight follows it.
    named(page, "ann")
    expect(page.locator("#chat > li.mention")).to_have_count(0)


def test_screenshots_of_a_room_with_presence_and_typing(browser, server, tmp_path):
    """The pictures in the README: a room with a few messages, three people in it, one of them typing.
    They are written to a temporary directory, or with ``ROOMS_SCREENSHOTS=docs`` to the README's own."""
    room = "release-day"
    shots = os.environ.get("ROOMS_SCREENSHOTS") or str(tmp_path)
    os.makedirs(shots, exist_ok=True)
    post_many(server, room, ["Morning! Is the deploy still on for today?"], "ann")
    post_many(server, room, ["Yes, at 15:00. Notes are on https://example.org/runbook."], "bob")
    post_many(server, room, ["@carl can you watch the dashboards while it rolls out?"], "ann")
    post_many(server, room, ["On it.", "I'll post here if anything looks odd."], "carl")
    contexts = []
    try:
        for handle in ("ann", "bob"):
            context = browser.new_context(viewport={"width": 900, "height": 700})
            context.set_default_timeout(WAIT_MS)
            contexts.append(context)
            named(open_room(context, server.url, room), handle)
        ann, bob = (context.pages[0] for context in contexts)
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


def test_the_page_asks_the_socket_for_its_features(new_context, server, room):
    page = new_context().new_page()
    sockets: list[str] = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    page.goto(f"{server.url}/{room}/")
    expect(page.locator("#status")).to_have_attribute("data-state", "live")
    assert len(sockets) == 1
    assert f"/chat/{room}/?features=presence,typing,deletes,edits,reactions&since=0" in sockets[0]


def test_the_room_works_by_keyboard_alone(new_context, server, room):
    post_many(server, room, [f"message {n}" for n in range(55)])
    page = open_room(new_context(), server.url, room)
    named(page, "eve")
    expect(page.locator("#presence")).to_be_visible(timeout=PRESENCE_WAIT_MS)
    # Every element the focus lands on, however briefly: the button at the top of the log may be gone by the
    # time a test could look (reaching it scrolls the log to the top, which loads the rest of the room).
    page.evaluate(
        """() => {
            window.__reached = [];
            document.addEventListener("focusin", (event) => window.__reached.push(event.target.id));
            document.activeElement.blur();
        }"""
    )
    for _ in range(16):  # round the whole page, from the message field where the name's Enter left the focus
        page.keyboard.press("Tab")
    reached = page.evaluate("window.__reached")
    for target in ("presence-summary", "notify-mentions", "log", "older", "handle", "message", "send"):
        assert target in reached, (target, reached)
    # The button at the top of the log, reached by keyboard, brought the rest of the room.
    expect(page.locator("#room-start")).to_be_visible()
    expect(page.locator("#chat > li")).to_have_count(55)

    page.focus("#presence-summary")
    page.keyboard.press("Enter")
    expect(page.locator("#presence-list")).to_be_visible()
    expect(page.locator("#presence-list")).to_contain_text("eve (you)")
    page.keyboard.press("Escape")
    expect(page.locator("#presence-list")).to_be_hidden()
    assert page.evaluate("document.activeElement.id") == "presence-summary"
    focus_outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert focus_outline != "none"


HANDLES = [
    "ann", "Ann Smith", " ", "\u3164", "a\u200bb", "a\u202eb", "a\xadb", "a\x07", "\u0301", "e\u0301",
    "\u0430dmin", "\u03a9mega", "\u01c5\u0430", "\u1d00\u0430", "\u65e5\u672c\u8a9e\u304b\u306a",
    "\U0001f600", "\U0001f600\u0430", "x" * 32, "x" * 33, "\xe9" * 32, "\ufb01", "\uff41\uff42",
    "spam\u034fmer", "ann\ufe0f", "ann\u3164", "\u2764\ufe0f", " ann\u3000",
]  # fmt: skip


def test_the_page_never_announces_a_name_the_server_would_refuse(new_context, server, room):
    """A refused hello or typing frame would be taken for the answer to the message in flight: the page's
    check of a name must refuse at least what the server refuses."""
    page = open_room(new_context(), server.url, room)
    verdicts = page.evaluate(
        """async (handles) => {
            const { handleProblem } = await import("/static/room/handle.js");
            return handles.map((handle) => handleProblem(handle.trim(), 32));
        }""",
        HANDLES,
    )
    for handle, verdict in zip(HANDLES, verdicts, strict=True):
        try:
            _check_handle(handle.strip(), 32)
        except ProtocolError:
            assert verdict is not None, f"the page would announce {handle!r}, which the server refuses"
        else:
            assert verdict is None, f"the page refuses {handle!r}, which the server takes"

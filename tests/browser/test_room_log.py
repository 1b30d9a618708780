"""The room page's log as a reader sees it, in a real headless Chromium against ``server.py``: joins and
leaves between messages, the formatting subset, the "New" divider, the name field folding away, the width
of a wide screen and the author key the page sends."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import PRESENCE_WAIT_MS, hide, named, open_room, send, show
from tests.support.room_page import sent_frames

pytestmark = pytest.mark.timeout(180)

TRANSPARENT = ("rgba(0, 0, 0, 0)", "transparent")


def test_a_join_is_a_note_of_its_own_not_part_of_the_message_before_it(new_context, server, room):
    ann = open_room(new_context(), server.url, room)
    named(ann, "ann")
    server.post(room, "carl", "@ann are you there?")
    mention = ann.locator("#chat > li.mention")
    expect(mention).to_have_count(1)
    bob = open_room(new_context(), server.url, room)
    named(bob, "bob")

    note = ann.locator("#chat .note")
    expect(note).to_have_text(["bob joined"], timeout=PRESENCE_WAIT_MS)
    assert ann.locator("#chat li .note").count() == 0
    assert note.evaluate("p => p.closest('li, .mention')") is None
    assert note.evaluate("p => getComputedStyle(p.parentElement).backgroundColor") in TRANSPARENT
    expect(mention.locator(".text")).to_have_text("@ann are you there?")
    # The message keeps its highlight; the next message, after the note, starts with its own header.
    server.post(room, "carl", "after the join")
    expect(ann.locator("#chat > li .text")).to_have_text(["@ann are you there?", "after the join"])
    expect(ann.locator("#chat > li").last.locator(".handle")).to_be_visible()
    assert ann.locator("#chat > li").last.evaluate("li => li.classList.contains('cont')") is False


# Each message the reader sends, and what its text becomes: (selector inside .text, texts of those elements).
FORMS: list[tuple[str, str, list[str]]] = [
    ("a **bold** word", "strong", ["bold"]),
    ("an *italic* word", "em", ["italic"]),
    ("run `ls *.txt*` now", "code", ["ls *.txt*"]),
    ("```\nfirst line\n**not bold** <b>\n```", "pre > code", ["first line\n**not bold** <b>"]),
    ("~~gone~~ here", "s", ["gone"]),
    ("> quoted **loud**\n> and more\nthe answer", "blockquote", ["quoted loud\nand more"]),
    ("**see https://example.org/a_(b)** @dan", "strong > a", ["https://example.org/a_(b)"]),
    ("2 * 3 * 4, **open, ~~half, `tick and *star", "strong, em, code, s, blockquote, pre", []),
    ("```\n>", "strong, em, code, s, blockquote, pre", []),
    (
        "<img src=x onerror=\"document.body.dataset.xss='i'\"> **<script>document.body.dataset.xss='s'</script>**",
        "strong",
        ["<script>document.body.dataset.xss='s'</script>"],
    ),
]
# What each message reads as, its markers gone.
SHOWN = [
    "a bold word",
    "an italic word",
    "run ls *.txt* now",
    "first line\n**not bold** <b>",
    "gone here",
    "quoted loud\nand morethe answer",
    "see https://example.org/a_(b) @dan",
    FORMS[7][0],
    "```\n>",
    "<img src=x onerror=\"document.body.dataset.xss='i'\"> <script>document.body.dataset.xss='s'</script>",
]


def test_the_formatting_subset_is_built_as_elements_and_markup_stays_text(new_context, server, room):
    context = new_context()
    violations: list[str] = []
    context.on("console", lambda line: violations.append(line.text) if "Content Security Policy" in line.text else None)
    page = open_room(context, server.url, room)
    named(page, "dan")
    for sent, (text, _, _) in enumerate(FORMS, start=1):
        page.fill("#message", text)
        page.press("#message", "Enter")
        expect(page.locator("#chat > li")).to_have_count(sent)
    for shown in ("live", "rendered by the server"):
        items = page.locator("#chat > li")
        expect(items).to_have_count(len(FORMS))
        for n, (text, selector, inner) in enumerate(FORMS):
            item = items.nth(n)
            assert item.locator(".text").evaluate("el => el.textContent") == SHOWN[n], (shown, text)
            found = item.locator(".text").locator(selector)
            assert found.evaluate_all("els => els.map((el) => el.textContent)") == inner, (shown, text)
        # Links and mentions as before: the address is whole, and the mention marks its message.
        link = items.nth(6).locator(".text a")
        assert link.get_attribute("href") == "https://example.org/a_(b)"
        expect(items.nth(6)).to_have_class(re.compile(r"\bmention\b"))
        assert page.locator("#chat script, #chat img, #chat b").count() == 0
        assert page.evaluate("document.body.dataset.xss") is None
        page.reload()
        expect(page.locator("#status")).to_have_attribute("data-state", "live")
    assert violations == []


AUTHOR_KEY = re.compile(r"^[A-Za-z0-9_-]{32}$")


def test_each_message_carries_the_browser_s_author_key_made_once_and_kept(new_context, server, room):
    context = new_context()
    page = context.new_page()
    frames = sent_frames(page)
    page.goto(f"{server.url}/{room}/")
    expect(page.locator("#status")).to_have_attribute("data-state", "live")
    send(page, "ann", "first")
    expect(page.locator("#chat > li")).to_have_count(1)
    page.reload()
    expect(page.locator("#status")).to_have_attribute("data-state", "live")
    send(page, "ann", "after a reload")
    expect(page.locator("#chat > li")).to_have_count(2)
    other = new_context().new_page()
    other_frames = sent_frames(other)
    other.goto(f"{server.url}/{room}/")
    send(other, "bob", "another browser")
    expect(other.locator("#chat > li")).to_have_count(3)

    messages = [frame for frame in frames if "message" in frame]
    assert [frame["message"] for frame in messages] == ["first", "after a reload"]  # each sent once
    keys = {frame["author_key"] for frame in messages}
    assert len(keys) == 1 and AUTHOR_KEY.match(keys.pop() or "")
    assert page.evaluate("localStorage.getItem('rooms:author-key')") == messages[0]["author_key"]
    other_keys = [frame["author_key"] for frame in other_frames if "message" in frame]
    assert len(other_keys) == 1 and AUTHOR_KEY.match(other_keys[0]) and other_keys[0] != messages[0]["author_key"]
    # The server never sends the key back.
    for item in page.locator("#chat > li").all():
        assert messages[0]["author_key"] not in item.evaluate("li => li.outerHTML")


def test_the_name_field_folds_away_once_set_and_change_name_brings_it_back(new_context, server, room):
    page = open_room(new_context(), server.url, room)
    box = page.locator(".composer-handle")
    message_width = "() => document.getElementById('message').getBoundingClientRect().width"
    narrow = page.evaluate(message_width)
    expect(box).not_to_have_class(re.compile(r"\bfolded\b"))
    expect(page.locator("#change-name")).to_be_hidden()
    assert page.evaluate("document.activeElement.id") == "handle"

    named(page, "ann")  # Enter leaves the name for the message field
    expect(box).to_have_class(re.compile(r"\bfolded\b"))
    expect(page.locator("#change-name")).to_be_visible()
    assert page.locator("#handle").evaluate("el => getComputedStyle(el).borderTopColor") in TRANSPARENT
    assert page.evaluate(message_width) > narrow + 50  # the message field took the name's room
    expect(page.locator(".composer-handle")).to_contain_text("as")

    page.click("#change-name")
    expect(box).not_to_have_class(re.compile(r"\bfolded\b"))
    assert page.evaluate("document.activeElement.id") == "handle"
    page.keyboard.type("bob")
    page.keyboard.press("Enter")
    expect(box).to_have_class(re.compile(r"\bfolded\b"))
    expect(page.locator("#handle")).to_have_value("bob")
    # A name the server would refuse does not fold.
    page.click("#change-name")
    page.fill("#handle", " ")
    page.click("#message")
    expect(box).not_to_have_class(re.compile(r"\bfolded\b"))
    page.fill("#handle", "carl")
    page.click("#message")
    # Kept for the next visit, folded from the start.
    page.reload()
    expect(page.locator("#handle")).to_have_value("carl")
    expect(box).to_have_class(re.compile(r"\bfolded\b"))
    send(page, "carl", "the name can still be typed into")
    expect(page.locator("#chat > li .handle")).to_have_text(["carl"])


@pytest.mark.parametrize("width", [1600, 2200])
def test_on_a_wide_screen_the_log_uses_the_width(browser, server, room, width):
    server.post(room, "ann", "a line as long as the room lets it be " * 12)
    context = browser.new_context(viewport={"width": width, "height": 900})
    try:
        page = open_room(context, server.url, room)
        log = page.locator("#log").bounding_box()
        text = page.locator("#chat > li .text").bounding_box()
        assert log is not None and text is not None
        assert log["width"] >= 0.85 * min(width, 1920), log
        assert text["width"] >= 0.8 * log["width"], (text, log)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    finally:
        context.close()


def texts_after_divider(page: Page) -> list[str]:
    """The texts of the messages after the "New" line, in order."""
    return page.evaluate(
        """() => {
            const line = document.querySelector("#chat > .new-divider");
            const texts = [];
            for (let el = line && line.nextElementSibling; el; el = el.nextElementSibling) {
                if (el.matches("li")) texts.push(el.querySelector(".text").textContent);
            }
            return texts;
        }"""
    )


def test_coming_back_to_the_tab_shows_new_before_what_came_while_away(new_context, server, room):
    reader = open_room(new_context(), server.url, room)
    named(reader, "dan")
    server.post(room, "ann", "read")
    expect(reader.locator("#chat > li")).to_have_count(1)
    expect(reader.locator(".new-divider")).to_have_count(0)
    hide(reader)
    send(reader, "dan", "my own")  # the reader's own message is not new to them
    expect(reader.locator("#chat > li")).to_have_count(2)
    server.post(room, "ann", "while away")
    server.post(room, "ann", "and more")
    expect(reader.locator("#chat > li")).to_have_count(4)
    show(reader)
    divider = reader.locator("#chat > .new-divider")
    expect(divider).to_have_count(1)
    expect(divider).to_have_text("New")
    assert divider.get_attribute("role") == "separator"
    assert texts_after_divider(reader) == ["while away", "and more"]
    expect(reader.locator("#chat > li").nth(2).locator(".handle")).to_be_visible()  # after the line, a header
    # Read while looking: the line stays; away again, it moves to the next run.
    server.post(room, "ann", "read as it came")
    expect(reader.locator("#chat > li")).to_have_count(5)
    assert texts_after_divider(reader) == ["while away", "and more", "read as it came"]
    hide(reader)
    server.post(room, "bob", "second absence")
    expect(reader.locator("#chat > li")).to_have_count(6)
    show(reader)
    expect(reader.locator("#chat > .new-divider")).to_have_count(1)
    assert texts_after_divider(reader) == ["second absence"]


def test_a_reload_shows_new_before_the_messages_this_browser_had_not_seen(new_context, server, room):
    context = new_context()
    reader = open_room(context, server.url, room)
    server.post(room, "ann", "seen")
    expect(reader.locator("#chat > li")).to_have_count(1)
    reader.close()
    server.post(room, "ann", "unseen one")
    server.post(room, "bob", "unseen two")
    reader = open_room(context, server.url, room)
    expect(reader.locator("#chat > .new-divider")).to_have_count(1)
    assert texts_after_divider(reader) == ["unseen one", "unseen two"]
    # Seen now: the next visit has nothing new.
    reader.reload()
    expect(reader.locator("#status")).to_have_attribute("data-state", "live")
    expect(reader.locator("#chat > li")).to_have_count(3)
    expect(reader.locator("#chat > .new-divider")).to_have_count(0)
    # Another browser, never here before, has no line either.
    stranger = open_room(new_context(), server.url, room)
    expect(stranger.locator("#chat > li")).to_have_count(3)
    expect(stranger.locator("#chat > .new-divider")).to_have_count(0)

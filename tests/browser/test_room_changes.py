"""Messages that change, from the room page, in a real headless Chromium against ``server.py``: editing (and
↑ for the last one), deleting one's own, replying, reactions and search, each against the server's side."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import RECONNECT_WAIT_MS, ProxyThread, RoomsServer, named, open_room, post_many, send
from tests.support.room_page import edit_last_own, message, sent_frames

pytestmark = pytest.mark.timeout(180)

THUMBS_UP = "\N{THUMBS UP SIGN}"


def own_page(new_context, server: RoomsServer, room: str, handle: str) -> tuple[Page, list[dict]]:
    page = new_context().new_page()
    frames = sent_frames(page)
    page.goto(f"{server.url}/{room}/")
    expect(page.locator("#status")).to_have_attribute("data-state", "live")
    named(page, handle)
    return page, frames


def actions(page: Page, text: str) -> list[str]:
    item = message(page, text)
    item.hover()
    return item.locator(".msg-actions button").all_inner_texts()


# -- what the page does today, whatever the server ------------------------------------------------------


def test_only_the_reader_s_own_messages_offer_edit_and_delete_and_a_reload_keeps_them(new_context, server, room):
    server.post(room, "bob", "from bob")
    page, _ = own_page(new_context, server, room, "ann")
    send(page, "ann", "from ann")
    expect(page.locator("#chat > li")).to_have_count(2)
    assert actions(page, "from bob") == ["Reply", "React"]
    assert actions(page, "from ann") == ["Reply", "React", "Edit", "Delete"]
    page.reload()
    expect(page.locator("#status")).to_have_attribute("data-state", "live")
    assert actions(page, "from ann") == ["Reply", "React", "Edit", "Delete"]
    # The same name in another browser is not the author.
    other = open_room(new_context(), server.url, room)
    named(other, "ann")
    assert actions(other, "from ann") == ["Reply", "React"]


def test_up_in_the_empty_field_edits_the_last_own_message_and_escape_leaves_it(new_context, server, room):
    page, _ = own_page(new_context, server, room, "ann")
    send(page, "ann", "first")
    send(page, "ann", "second **loud**")
    server.post(room, "bob", "bob's, after mine")
    expect(page.locator("#chat > li")).to_have_count(3)
    page.focus("#message")
    page.keyboard.press("ArrowUp")
    expect(page.locator("#compose-mode")).to_be_visible()
    expect(page.locator("#compose-mode")).to_contain_text("Editing your message")
    expect(page.locator("#message")).to_have_value("second **loud**")  # as typed, not as shown
    page.keyboard.press("Escape")
    expect(page.locator("#compose-mode")).to_be_hidden()
    expect(page.locator("#message")).to_have_value("")
    # ↑ in a field with text moves the caret, as it always did.
    page.fill("#message", "a draft")
    page.keyboard.press("ArrowUp")
    expect(page.locator("#compose-mode")).to_be_hidden()


def test_a_reply_names_the_message_it_answers(new_context, server, room):
    server.post(room, "bob", "who is on call?")
    page, frames = own_page(new_context, server, room, "ann")
    bob_item = message(page, "who is on call?")
    bob_id = bob_item.get_attribute("data-id")
    bob_item.hover()
    bob_item.get_by_role("button", name="Reply to bob").click()
    expect(page.locator("#compose-mode")).to_have_text(re.compile(r"Replying to bob: who is on call\?"))
    assert page.evaluate("document.activeElement.id") == "message"
    page.keyboard.type("me, today")
    page.keyboard.press("Enter")
    expect(page.locator("#chat > li")).to_have_count(2)
    expect(page.locator("#compose-mode")).to_be_hidden()
    sent = [frame for frame in frames if frame.get("message") == "me, today"]
    assert len(sent) == 1 and sent[0]["reply_to"] == bob_id, sent
    # The next message is no reply.
    send(page, "ann", "and tomorrow")
    expect(page.locator("#chat > li")).to_have_count(3)
    assert "reply_to" not in next(frame for frame in frames if frame.get("message") == "and tomorrow")


def test_the_picker_sends_one_reaction_frame(new_context, server, room):
    server.post(room, "bob", "shipped")
    page, frames = own_page(new_context, server, room, "ann")
    item = message(page, "shipped")
    item.hover()
    item.get_by_role("button", name="React to this message").click()
    picker = item.locator(".reaction-picker button")
    expect(picker).to_have_count(8)
    expect(picker.first).to_be_focused()
    item.get_by_role("button", name=THUMBS_UP, exact=True).click()
    expect(item.locator(".reaction-picker")).to_have_count(0)
    reacts = [frame for frame in frames if frame.get("type") == "react"]
    assert reacts == [{"type": "react", "id": item.get_attribute("data-id"), "emoji": THUMBS_UP, "on": True}]
    # Said after its own hello, so the server knows whose reaction it is.
    hellos = [n for n, frame in enumerate(frames) if frame.get("type") == "hello"]
    assert hellos and hellos[0] < frames.index(reacts[0])


def test_messages_are_reached_by_keyboard_and_then_their_buttons(new_context, server, room):
    post_many(server, room, ["one", "two", "three"], "bob")
    page = open_room(new_context(), server.url, room)
    named(page, "ann")
    page.focus("#log")
    page.keyboard.press("ArrowUp")
    assert page.evaluate("document.activeElement.querySelector('.text').textContent") == "three"
    page.keyboard.press("ArrowUp")
    assert page.evaluate("document.activeElement.querySelector('.text').textContent") == "two"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Reply"
    expect(message(page, "two").locator(".msg-bar")).to_have_css("opacity", "1")
    page.keyboard.press("Enter")
    expect(page.locator("#compose-mode")).to_contain_text("Replying to bob: two")


def test_on_a_touch_screen_a_tap_shows_a_message_s_buttons(browser, server, room):
    server.post(room, "bob", "one")
    server.post(room, "bob", "two")
    context = browser.new_context(viewport={"width": 390, "height": 700}, is_mobile=True, has_touch=True)
    try:
        page = open_room(context, server.url, room)
        expect(page.locator("#chat .msg-actions button")).to_have_count(4)
        expect(page.locator("#chat .msg-bar").first).to_be_hidden()
        expect(page.locator("#chat .msg-bar").last).to_be_hidden()
        message(page, "two").locator(".text").tap()
        expect(message(page, "two").get_by_role("button", name="Reply to bob")).to_be_visible()
        expect(message(page, "one").locator(".msg-bar")).to_be_hidden()
    finally:
        context.close()


# -- what needs the server's side -----------------------------------------------------------------------


def test_an_edit_shows_on_every_page_marked_edited_and_stays_after_a_reload(new_context, server, room):
    ann, _ = own_page(new_context, server, room, "ann")
    bob = open_room(new_context(), server.url, room)
    send(ann, "ann", "helo wrold")
    expect(message(bob, "helo wrold")).to_have_count(1)
    edit_last_own(ann, "hello **world**")
    for page in (ann, bob):
        item = message(page, "hello world")
        expect(item).to_have_count(1)
        expect(item.locator(".text strong")).to_have_text("world")
        expect(item.locator(".edited-mark")).to_have_text("(edited)")
    expect(ann.locator("#compose-mode")).to_be_hidden()
    expect(ann.locator("#message")).to_have_value("")
    bob.reload()
    expect(message(bob, "hello world").locator(".edited-mark")).to_have_text("(edited)")
    assert actions(bob, "hello world") == ["Reply", "React"]


def test_deleting_one_s_own_message_asks_once_and_every_page_loses_it(new_context, server, room):
    ann, _ = own_page(new_context, server, room, "ann")
    bob = open_room(new_context(), server.url, room)
    send(ann, "ann", "oops, wrong room")
    send(ann, "ann", "stays")
    expect(bob.locator("#chat > li")).to_have_count(2)
    item = message(ann, "oops, wrong room")
    item.hover()
    item.get_by_role("button", name="Delete your message").click()
    expect(item).to_have_count(1)  # it asks first
    item.get_by_role("button", name="Press again to delete your message").click()
    for page in (ann, bob):
        expect(page.locator("#chat > li .text")).to_have_text(["stays"])
    bob.reload()
    expect(bob.locator("#chat > li .text")).to_have_text(["stays"])


def test_a_reply_quotes_what_it_answers_and_the_quote_opens_it_even_when_not_loaded(new_context, server, room):
    post_many(server, room, ["the question"] + [f"chatter {n}" for n in range(59)], "bob")
    ann, _ = own_page(new_context, server, room, "ann")
    expect(ann.locator("#chat > li")).to_have_count(50)
    # Reply from bob's page, where the question is loaded, so the quote is made by the server's reply_to.
    bob, bob_frames = own_page(new_context, server, room, "bob")
    bob.evaluate("document.getElementById('log').scrollTop = 0")
    expect(bob.locator("#room-start")).to_be_visible()
    question = message(bob, "the question")
    question_id = question.get_attribute("data-id")
    question.hover()
    question.get_by_role("button", name="Reply to bob").click()
    bob.keyboard.type("the answer")
    bob.keyboard.press("Enter")
    answer = message(ann, "the answer")
    expect(answer.locator(".reply-quote")).to_contain_text("an earlier message")  # not loaded on ann's page
    expect(message(bob, "the answer").locator(".reply-quote")).to_have_text("↪ bob: the question")
    answer.locator(".reply-quote").click()
    expect(message(ann, "the question")).to_be_in_viewport()
    expect(message(ann, "the question")).to_have_class(re.compile(r"\bflash\b"))
    ann.reload()
    expect(message(ann, "the answer").locator(".reply-quote")).to_contain_text("an earlier message")
    assert next(f for f in bob_frames if f.get("message") == "the answer")["reply_to"] == question_id


def test_reactions_are_chips_with_counts_on_every_page(new_context, server, room):
    server.post(room, "carl", "release is out")
    ann, _ = own_page(new_context, server, room, "ann")
    bob, _ = own_page(new_context, server, room, "bob")

    def react(page: Page, emoji: str) -> None:
        item = message(page, "release is out")
        item.hover()
        chip = item.locator(f".reaction[data-emoji='{emoji}']")
        if chip.count():
            chip.click()
        else:
            item.get_by_role("button", name="React to this message").click()
            item.get_by_role("button", name=emoji, exact=True).click()

    def chips(page: Page) -> list[str]:
        return message(page, "release is out").locator(".reaction").all_inner_texts()

    react(ann, THUMBS_UP)
    for page in (ann, bob):
        expect(message(page, "release is out").locator(".reaction")).to_have_text([f"{THUMBS_UP}1"])
    expect(message(ann, "release is out").locator(".reaction")).to_have_attribute("aria-pressed", "true")
    expect(message(bob, "release is out").locator(".reaction")).to_have_attribute("aria-pressed", "false")
    react(bob, THUMBS_UP)
    expect(message(ann, "release is out").locator(".reaction")).to_have_text([f"{THUMBS_UP}2"])
    react(ann, THUMBS_UP)  # taken back
    expect(message(bob, "release is out").locator(".reaction")).to_have_text([f"{THUMBS_UP}1"])
    ann.reload()
    expect(message(ann, "release is out").locator(".reaction")).to_have_text([f"{THUMBS_UP}1"])
    assert chips(ann) == chips(bob)


def test_search_finds_messages_and_a_result_opens_it_in_the_log(new_context, server, room):
    post_many(server, room, ["the deploy key is rotated"] + [f"filler {n}" for n in range(59)], "bob")
    server.post(room, "carl", "Deploying now")
    page = open_room(new_context(), server.url, room)
    page.click("#search-summary")
    expect(page.locator("#search-q")).to_be_focused()
    page.keyboard.type("deplo")
    page.keyboard.press("Enter")
    results = page.locator("#search-results .search-result")
    expect(results).to_have_count(2)
    expect(results.locator(".search-excerpt")).to_have_text(["Deploying now", "the deploy key is rotated"])
    results.nth(1).click()
    expect(page.locator("#search-results")).to_be_hidden()
    found = message(page, "the deploy key is rotated")
    expect(found).to_be_in_viewport()
    expect(found).to_have_class(re.compile(r"\bflash\b"))
    expect(found).to_be_focused()
    # Nothing found says so.
    page.click("#search-summary")
    page.fill("#search-q", "nowhere-to-be-found")
    page.keyboard.press("Enter")
    expect(page.locator("#search-state")).to_have_text("No message holds all of these words.")


def test_a_page_that_was_offline_catches_up_on_edits_reactions_and_deletions(new_context, server, room):
    proxy = ProxyThread(server.port)
    try:
        ann, _ = own_page(new_context, server, room, "ann")
        send(ann, "ann", "to be edited")
        send(ann, "ann", "to be deleted")
        send(ann, "ann", "to be liked")
        away = open_room(new_context(), proxy.url, room)
        expect(away.locator("#chat > li")).to_have_count(3)

        proxy.cut()
        expect(away.locator("#status")).not_to_have_attribute("data-state", "live")
        first = message(ann, "to be edited")
        first.hover()
        first.get_by_role("button", name="Edit your message").click()
        ann.fill("#message", "edited while you were away")
        ann.keyboard.press("Enter")
        expect(message(ann, "edited while you were away")).to_have_count(1)
        second = message(ann, "to be deleted")
        second.hover()
        second.get_by_role("button", name="Delete your message").click()
        second.get_by_role("button", name="Press again to delete your message").click()
        expect(second).to_have_count(0)
        third = message(ann, "to be liked")
        third.hover()
        third.get_by_role("button", name="React to this message").click()
        third.get_by_role("button", name=THUMBS_UP, exact=True).click()
        expect(third.locator(".reaction")).to_have_text([f"{THUMBS_UP}1"])
        send(ann, "ann", "marker after the changes")

        proxy.restore()
        expect(away.locator("#status")).to_have_attribute("data-state", "live", timeout=RECONNECT_WAIT_MS)
        expect(away.locator("#chat > li .text")).to_have_text(
            ["edited while you were away", "to be liked", "marker after the changes"]
        )
        expect(message(away, "edited while you were away").locator(".edited-mark")).to_have_text("(edited)")
        expect(message(away, "to be liked").locator(".reaction")).to_have_text([f"{THUMBS_UP}1"])
    finally:
        proxy.close()

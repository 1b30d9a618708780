"""Moderating from the room page: Delete, Ban and Lock, and the same by keyboard alone. In a real headless
Chromium against ``server.py`` running as a real process with a moderator token in its config
(``tests/support/moderation_page.py``)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.support.browser import WAIT_MS, open_room, send
from tests.support.moderation_page import (
    NO_RETRY_MS,
    api,
    ban,
    delete,
    frames_sent,
    item,
    moderated_server,
    open_panel,
    post,
    sign_in,
    signed_in,
    tool,
)
from tests.support.processes import ServerProcess
from tests.support.tokens import MODERATOR_TOKEN

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with moderated_server() as process:
        yield process


def test_a_moderator_deletes_a_message_and_every_page_loses_it(new_context, server, room):
    post(server, room, "ann", "rendered by the server")
    post(server, room, "ann", "stays")
    reader = open_room(new_context(), server.base_url, room)
    moderator = open_room(new_context(), server.base_url, room)
    # Before signing in, messages offer nothing.
    expect(moderator.locator("#chat .msg-tools")).to_have_count(0)
    sign_in(moderator)
    signed_in(moderator)
    expect(moderator.locator("#mod-note-text")).to_contain_text("Signed in as a moderator")
    expect(moderator.locator("#chat > li .msg-tools")).to_have_count(2)
    send(reader, "bob", "sent live")
    expect(item(moderator, "sent live").locator(".msg-tools")).to_have_count(1)

    # A message of the history the server rendered, in both pages.
    delete(moderator, "rendered by the server")
    expect(moderator.locator("#delete-dialog")).to_be_hidden()
    expect(moderator.locator("#mod-note-text")).to_have_text("Message deleted.")
    for page in (moderator, reader):
        expect(item(page, "rendered by the server")).to_have_count(0)
        expect(item(page, "stays")).to_have_count(1)
    # And one that arrived live; the focus goes back to the log, the button having gone with the message.
    delete(moderator, "sent live")
    expect(item(reader, "sent live")).to_have_count(0)
    expect(moderator.locator("#delete-dialog")).to_be_hidden()
    expect(moderator.locator("#log")).to_be_focused()

    reader.reload()
    expect(reader.locator("#chat > li .text")).to_have_text(["stays"])


def test_delete_asks_first_and_says_when_the_message_was_already_gone(new_context, server, room):
    message = post(server, room, "ann", "going twice")
    moderator = open_room(new_context(), server.base_url, room)
    sign_in(moderator)
    signed_in(moderator)
    tool(moderator, "going twice", "Delete").click()
    moderator.click("#delete-cancel")
    expect(moderator.locator("#delete-dialog")).to_be_hidden()
    expect(item(moderator, "going twice")).to_have_count(1)
    # Another moderator deletes it while this one is asked; the delete frame takes it out of the log.
    tool(moderator, "going twice", "Delete").click()
    assert api(server, "DELETE", f"/api/rooms/{room}/messages/{message['id']}")[0] == 204
    expect(item(moderator, "going twice")).to_have_count(0)
    moderator.click("#delete-confirm")
    expect(moderator.locator("#mod-note-text")).to_have_text("That message was already gone.")
    expect(moderator.locator("#delete-dialog")).to_be_hidden()


def test_a_banned_handle_is_refused_given_back_and_not_retried(new_context, server, room):
    bob_context = new_context()
    bob = bob_context.new_page()
    sent = frames_sent(bob)
    bob.goto(f"{server.base_url}/{room}/")
    expect(bob.locator("#status")).to_have_attribute("data-state", "live")
    moderator = open_room(new_context(), server.base_url, room)
    send(bob, "bob", "before the ban")
    sign_in(moderator)
    signed_in(moderator)
    ban(moderator, "before the ban", where="room", term="3600", reason="spam")
    expect(moderator.locator("#ban-dialog")).to_be_hidden()
    expect(moderator.locator("#mod-note-text")).to_have_text("bob is banned in this room for 1 hour.")
    status, bans = api(server, "GET", "/api/bans")
    assert status == 200
    ours = [b for b in bans["bans"] if b["handle"] == "bob" and b["room"] == room]
    assert len(ours) == 1 and ours[0]["reason"] == "spam" and ours[0]["expires"] is not None
    open_panel(moderator)
    expect(moderator.locator("#mod-bans > li").filter(has_text="bob")).to_contain_text("in this room")

    send(bob, "bob", "after the ban")
    expect(bob.locator("#form-error")).to_contain_text("Not sent: ")
    expect(bob.locator("#message")).to_have_value("after the ban")
    expect(bob.locator("#outbox > li")).to_have_count(0)
    bob.wait_for_timeout(NO_RETRY_MS)
    assert len([frame for frame in sent if "after the ban" in frame]) == 1, sent
    expect(item(moderator, "after the ban")).to_have_count(0)

    # Lifted from the panel: bob's next message goes.
    moderator.locator("#mod-bans > li").filter(has_text="bob").get_by_role("button", name=re.compile("^Lift")).click()
    expect(moderator.locator("#mod-note-text")).to_have_text("The ban of bob is lifted.")
    bob.press("#message", "Enter")
    expect(item(moderator, "after the ban")).to_have_count(1, timeout=WAIT_MS)
    expect(bob.locator("#form-error")).to_be_hidden()


def test_a_ban_of_every_room_until_lifted(new_context, server, room):
    carl = open_room(new_context(), server.base_url, room)
    moderator = open_room(new_context(), server.base_url, room)
    send(carl, "carl", "hello")
    sign_in(moderator)
    signed_in(moderator)
    ban(moderator, "hello", where="everywhere", term="")
    expect(moderator.locator("#mod-note-text")).to_have_text("carl is banned in every room until lifted.")
    bans = api(server, "GET", "/api/bans")[1]["bans"]
    ours = [b for b in bans if b["handle"] == "carl"]
    assert len(ours) == 1 and ours[0]["room"] is None and ours[0]["expires"] is None
    elsewhere = open_room(new_context(), server.base_url, room + "-b")
    send(elsewhere, "carl", "elsewhere")
    expect(elsewhere.locator("#form-error")).to_contain_text("Not sent: ")
    assert api(server, "DELETE", f"/api/bans/{ours[0]['id']}")[0] == 204


def test_a_locked_room_refuses_others_until_it_is_unlocked(new_context, server, room):
    reader = open_room(new_context(), server.base_url, room)
    moderator = open_room(new_context(), server.base_url, room)
    sign_in(moderator)
    signed_in(moderator)
    open_panel(moderator)
    expect(moderator.locator("#mod-lock-state")).to_have_text("This room is open: everyone can post.")
    moderator.click("#mod-lock")
    expect(moderator.locator("#mod-note-text")).to_have_text("Room locked: only moderators can post.")
    expect(moderator.locator("#mod-lock-state")).to_have_text("This room is locked: only moderators can post.")
    expect(moderator.locator("#room-locked")).to_be_visible()
    expect(moderator.locator("#mod-lock")).to_be_hidden()

    send(reader, "dan", "while locked")
    expect(reader.locator("#form-error")).to_contain_text("Not sent: ")
    expect(reader.locator("#message")).to_have_value("while locked")
    expect(reader.locator("#room-locked")).to_be_visible()  # asked again after the refusal
    # A moderator still posts.
    send(moderator, "mod", "moderators may")
    expect(item(reader, "moderators may")).to_have_count(1)

    moderator.click("#mod-unlock")
    expect(moderator.locator("#mod-note-text")).to_have_text("Room unlocked: everyone can post again.")
    expect(moderator.locator("#room-locked")).to_be_hidden()
    reader.press("#message", "Enter")
    expect(item(moderator, "while locked")).to_have_count(1)
    reader.reload()
    expect(reader.locator("#status")).to_have_attribute("data-state", "live")
    expect(reader.locator("#room-locked")).to_be_hidden()


def test_moderating_works_by_keyboard(new_context, server, room):
    post(server, room, "ann", "by keyboard")
    page = open_room(new_context(), server.base_url, room)
    page.focus("#moderation-summary")
    page.keyboard.press("Enter")
    expect(page.locator("#mod-token")).to_be_focused()
    page.keyboard.type(MODERATOR_TOKEN)
    page.keyboard.press("Enter")
    signed_in(page)
    # Closed, out of the messages' way, the focus back on its summary.
    expect(page.locator(".moderation-panel")).to_be_hidden()
    expect(page.locator("#moderation-summary")).to_be_focused()
    delete_button = item(page, "by keyboard").get_by_role("button", name="Delete the message of ann")
    delete_button.focus()
    assert page.evaluate("getComputedStyle(document.activeElement.parentElement).opacity") == "1"
    page.keyboard.press("Enter")
    expect(page.locator("#delete-dialog")).to_be_visible()
    page.keyboard.press("Escape")  # closed, nothing deleted, the focus back on the button
    expect(page.locator("#delete-dialog")).to_be_hidden()
    expect(delete_button).to_be_focused()
    page.keyboard.press("Tab")
    expect(item(page, "by keyboard").get_by_role("button", name="Ban ann")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#ban-dialog")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#ban-dialog")).to_be_hidden()

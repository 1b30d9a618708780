"""Moderating from the room page, in a real headless Chromium against ``server.py`` running as a real
process with a moderator token in its config (the browser fixtures of ``tests/browser/conftest.py``): signing
in, Delete, Ban, Lock, the marks of moderators and verified handles, and the reader's refused messages."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.support.browser import WAIT_MS, open_room, send
from tests.support.processes import ServerProcess
from tests.support.tokens import MODERATOR_TOKEN, SECRET, claims, hs256

pytestmark = pytest.mark.timeout(180)

# Open mode (anyone picks a handle), with a moderator token and the secret of the site's signed tokens.
CONFIG = f"""
auth:
  jwt_secret: {SECRET}
moderation:
  tokens: [{MODERATOR_TOKEN}]
"""
WRONG_TOKEN = "not-the-moderator-token-but-as-long-as-one"
# Longer than the outbox's wait before it sends a refused message again (RETRY_SEND_MS, 2 s).
NO_RETRY_MS = 3_000
UNAVAILABLE = json.dumps({"error": "storage unavailable"})


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    process = ServerProcess(config=CONFIG)
    try:
        process.wait_healthy()
        yield process
    finally:
        process.stop()


def api(server: ServerProcess, method: str, path: str, body: object = None, token: str | None = MODERATOR_TOKEN):
    """One request to the API; (status, parsed JSON or None)."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(server.base_url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            text = reply.read()
            return reply.status, json.loads(text) if text else None
    except urllib.error.HTTPError as refused:
        text = refused.read()
        return refused.code, json.loads(text) if text.startswith(b"{") else None


def post(server: ServerProcess, room: str, handle: str, message: str, token: str | None = None) -> dict:
    status, body = api(server, "POST", f"/api/rooms/{room}/messages", {"handle": handle, "message": message}, token)
    assert status == 201, (status, body)
    return body


def open_panel(page: Page) -> None:
    if page.locator("#moderation").get_attribute("open") is None:
        page.click("#moderation-summary")
    expect(page.locator(".moderation-panel")).to_be_visible()


def sign_in(page: Page, token: str = MODERATOR_TOKEN) -> None:
    open_panel(page)
    page.fill("#mod-token", token)
    page.press("#mod-token", "Enter")


def signed_in(page: Page) -> None:
    expect(page.locator("#moderation-summary")).to_have_text("Moderating", timeout=WAIT_MS)


def item(page: Page, text: str) -> Locator:
    return page.locator("#chat > li").filter(has=page.locator(".text", has_text=re.compile(f"^{re.escape(text)}$")))


def tool(page: Page, text: str, action: str) -> Locator:
    message = item(page, text)
    message.hover()
    return message.get_by_role("button", name=re.compile(f"^{action}"))


def delete(page: Page, text: str) -> None:
    tool(page, text, "Delete").click()
    expect(page.locator("#delete-dialog")).to_be_visible()
    expect(page.locator("#delete-text")).to_have_text(text)
    page.click("#delete-confirm")


def ban(page: Page, text: str, where: str = "room", term: str = "3600", reason: str = "") -> None:
    tool(page, text, "Ban").click()
    dialog = page.locator("#ban-dialog")
    expect(dialog).to_be_visible()
    dialog.locator(f"input[name=ban-where][value='{where}']").check()
    dialog.locator(f"input[name=ban-for][value='{term}']").check()
    page.fill("#ban-reason", reason)
    page.click("#ban-confirm")


def frames_sent(page: Page) -> list[str]:
    """Every text frame the page's sockets send from now on (attach before the page opens its socket)."""
    sent: list[str] = []
    page.on("websocket", lambda socket: socket.on("framesent", lambda payload: sent.append(str(payload))))
    return sent


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


def test_api_errors_are_shown_and_a_refused_token_signs_the_moderator_out(new_context, server, room):
    post(server, room, "ann", "first")
    post(server, room, "ann", "second")
    moderator = open_room(new_context(), server.base_url, room)
    sign_in(moderator)
    signed_in(moderator)
    # The server fails: its error text is shown in the dialog, which stays open.
    moderator.route(
        "**/api/rooms/*/messages/*",
        lambda route: route.fulfill(status=503, content_type="application/json", body=UNAVAILABLE),
    )
    delete(moderator, "first")
    expect(moderator.locator("#delete-error")).to_have_text("The server refused: storage unavailable")
    expect(moderator.locator("#delete-dialog")).to_be_visible()
    moderator.keyboard.press("Escape")
    expect(moderator.locator("#delete-dialog")).to_be_hidden()
    # The server no longer takes the token: signed out, told so, and the tools are gone.
    moderator.unroute("**/api/rooms/*/messages/*")
    moderator.route(
        "**/api/rooms/*/messages/*",
        lambda route: route.fulfill(status=401, content_type="application/json", body='{"error": "no"}'),
    )
    delete(moderator, "second")
    expect(moderator.locator("#mod-note-text")).to_contain_text("Signed out")
    expect(moderator.locator("#moderation-summary")).to_have_text("Moderate")
    expect(moderator.locator("#chat .msg-tools")).to_have_count(0)
    assert moderator.evaluate("sessionStorage.getItem('rooms.moderator-token')") is None
    expect(item(moderator, "second")).to_have_count(1)


def test_a_wrong_token_is_refused_and_the_token_stays_out_of_addresses_and_html(new_context, server, room):
    context = new_context()
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("websocket", lambda socket: requests.append(socket.url))
    page.goto(f"{server.base_url}/{room}/")
    expect(page.locator("#status")).to_have_attribute("data-state", "live")
    expect(page.locator("#moderation-summary")).to_have_text("Moderate")
    assert page.get_attribute("#mod-token", "type") == "password"
    assert page.get_attribute("#mod-token", "autocomplete") == "off"

    sign_in(page, WRONG_TOKEN)
    expect(page.locator("#mod-signin-error")).to_have_text("That token is not a moderator's.")
    expect(page.locator("#moderation-summary")).to_have_text("Moderate")
    assert page.evaluate("sessionStorage.getItem('rooms.moderator-token')") is None
    send(page, "ann", "hello")
    expect(page.locator("#chat > li")).to_have_count(1)
    expect(page.locator("#chat .msg-tools")).to_have_count(0)

    sign_in(page)
    signed_in(page)
    expect(page.locator("#mod-signin-error")).to_be_hidden()
    assert page.input_value("#mod-token") == ""
    assert page.evaluate("sessionStorage.getItem('rooms.moderator-token')") == MODERATOR_TOKEN
    assert page.evaluate("localStorage.length === 0 || !JSON.stringify(localStorage).includes('moderator-token-')")
    # Kept for the tab: a reload still moderates; another tab of the same browser does not.
    page.reload()
    expect(page.locator("#status")).to_have_attribute("data-state", "live")
    signed_in(page)
    other = context.new_page()
    other.goto(f"{server.base_url}/{room}/")
    expect(other.locator("#status")).to_have_attribute("data-state", "live")
    other.wait_for_timeout(500)
    expect(other.locator("#moderation-summary")).to_have_text("Moderate")
    for shown in (page, other):
        assert MODERATOR_TOKEN not in shown.content()
        assert MODERATOR_TOKEN not in shown.url
    for token in (MODERATOR_TOKEN, WRONG_TOKEN):
        assert not [url for url in requests if token in url], requests

    open_panel(page)
    page.click("#mod-signout")
    expect(page.locator("#moderation-summary")).to_have_text("Moderate")
    expect(page.locator("#chat .msg-tools")).to_have_count(0)
    assert page.evaluate("sessionStorage.getItem('rooms.moderator-token')") is None


def test_the_token_goes_only_as_authorization_to_the_api(new_context, server, room):
    page = new_context().new_page()
    seen: list[tuple[str, str | None]] = []
    page.on("request", lambda request: seen.append((request.url, request.headers.get("authorization"))))
    posted: list[dict] = []
    page.on("request", lambda request: posted.append(request.post_data_json) if request.method == "POST" else None)
    page.goto(f"{server.base_url}/{room}/")
    expect(page.locator("#status")).to_have_attribute("data-state", "live")
    sign_in(page)
    signed_in(page)
    send(page, "mod", "from the moderator")
    expect(page.locator("#chat > li")).to_have_count(1)
    with_token = [url for url, authorization in seen if authorization == f"Bearer {MODERATOR_TOKEN}"]
    assert with_token and all(url.startswith(server.base_url + "/api/") for url in with_token), seen
    # The moderator's message went by POST with it, so that it is a moderator's, and with the browser's author key.
    assert f"{server.base_url}/api/rooms/{room}/messages" in with_token
    assert posted and posted[0]["author_key"] == page.evaluate("localStorage.getItem('rooms:author-key')"), posted


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


def test_a_moderator_s_message_is_marked_and_a_picked_name_cannot_pass_for_it(new_context, server, room):
    reader = open_room(new_context(), server.base_url, room)
    moderator = open_room(new_context(), server.base_url, room)
    impostor = open_room(new_context(), server.base_url, room)
    sign_in(moderator)
    signed_in(moderator)
    send(moderator, "admin", "from the real one")
    expect(item(reader, "from the real one")).to_have_count(1)
    send(impostor, "admin", "from a picked admin")
    expect(item(reader, "from a picked admin")).to_have_count(1)

    real = item(reader, "from the real one")
    badge = real.locator(".sender-mark.mod")
    expect(badge).to_have_count(1)
    expect(badge).to_have_attribute("title", "Moderator")
    expect(badge).to_have_text("mod (moderator)")  # "mod" to see, "(moderator)" for screen readers
    picked = item(reader, "from a picked admin")
    expect(picked.locator(".sender-mark")).to_have_count(0)
    # Same handle, a minute apart: the picked one still gets a header of its own, unmarked.
    expect(picked).not_to_have_class(re.compile(r"\bcont\b"))
    expect(picked.locator(".meta")).to_be_visible()

    # The history the server renders marks it too.
    reader.reload()
    expect(reader.locator("#status")).to_have_attribute("data-state", "live")
    expect(item(reader, "from the real one").locator(".sender-mark.mod")).to_have_count(1)
    expect(item(reader, "from a picked admin").locator(".sender-mark")).to_have_count(0)


def test_a_verified_handle_looks_different_from_a_picked_one(new_context, server, room):
    reader = open_room(new_context(), server.base_url, room)
    signed = new_context().new_page()
    signed.goto(f"{server.base_url}/{room}/?token={hs256(claims('u-7', name='erin'))}")
    expect(signed.locator("#status")).to_have_attribute("data-state", "live")
    expect(signed.locator("#handle")).to_have_value("erin")  # the token's name, which the page cannot change
    signed.fill("#message", "signed in")
    signed.press("#message", "Enter")
    picked = open_room(new_context(), server.base_url, room)
    send(picked, "erin", "picked")
    for page in (reader, None):
        if page is None:
            reader.reload()
            expect(reader.locator("#status")).to_have_attribute("data-state", "live")
            page = reader
        expect(item(page, "picked")).to_have_count(1)
        mark = item(page, "signed in").locator(".sender-mark.verified")
        expect(mark).to_have_count(1)
        expect(mark).to_have_attribute("title", "verified")
        expect(item(page, "picked").locator(".sender-mark")).to_have_count(0)
        expect(item(page, "picked").locator(".meta")).to_be_visible()


def test_a_signed_token_that_moderates_counts_without_signing_in(new_context, server, room):
    post(server, room, "ann", "to go")
    page = new_context().new_page()
    page.goto(f"{server.base_url}/{room}/?token={hs256(claims('m-1', name='Mo', mod=True))}")
    expect(page.locator("#status")).to_have_attribute("data-state", "live")
    signed_in(page)
    open_panel(page)
    expect(page.locator("#mod-who")).to_have_text("Your sign-in token makes you a moderator here.")
    expect(page.locator("#mod-signout")).to_be_hidden()
    page.keyboard.press("Escape")
    delete(page, "to go")
    expect(item(page, "to go")).to_have_count(0)
    assert page.evaluate("sessionStorage.getItem('rooms.moderator-token')") is None
    # A user's token, not a moderator's: nothing to moderate with.
    user = new_context().new_page()
    user.goto(f"{server.base_url}/{room}/?token={hs256(claims('u-2', name='Una'))}")
    expect(user.locator("#status")).to_have_attribute("data-state", "live")
    user.wait_for_timeout(500)
    expect(user.locator("#moderation-summary")).to_have_text("Moderate")


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

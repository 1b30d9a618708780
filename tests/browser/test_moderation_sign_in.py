"""Signing in to moderate from the room page, where the token goes and where it never does, and the marks of
moderators' messages and verified handles. In a real headless Chromium against ``server.py`` running as a
real process with a moderator token in its config (``tests/support/moderation_page.py``)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.support.browser import open_room, send
from tests.support.moderation_page import (
    UNAVAILABLE,
    WRONG_TOKEN,
    delete,
    item,
    moderated_server,
    open_panel,
    post,
    sign_in,
    signed_in,
)
from tests.support.processes import ServerProcess
from tests.support.tokens import MODERATOR_TOKEN, claims, hs256

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with moderated_server() as process:
        yield process


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
    # The marker: a page starts checking any token it holds as it starts, before its socket is live; the check
    # over (or never begun), the panel is "out" for good.
    expect(other.locator("#moderation")).to_have_attribute("data-state", "out")
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
    expect(user.locator("#moderation")).to_have_attribute("data-state", "out")  # the token's check is over
    expect(user.locator("#moderation-summary")).to_have_text("Moderate")

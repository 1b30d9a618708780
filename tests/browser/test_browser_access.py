"""The page keeps a token and an invite for its tab, in a real headless Chromium against ``server.py``:
taken out of the address bar, sent on the socket, and asked with again when the page is reloaded."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import WAIT_MS
from tests.support.processes import ServerProcess
from tests.support.tokens import MODERATOR_TOKEN, SECRET, claims, hs256

pytestmark = pytest.mark.timeout(180)

# The browser and its contexts are the browser tier's (conftest.py); this module brings its own server (its config).

CONFIG = f"""
auth:
  mode: token
  jwt_secret: {SECRET}
rooms:
  private: [team-*]
  invite_secret: {"i" * 40}
moderation:
  tokens: [{MODERATOR_TOKEN}]
"""


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    process = ServerProcess(config=CONFIG)
    try:
        process.wait_healthy()
        yield process
    finally:
        process.stop()


def invite_to(server: ServerProcess, room: str) -> str:
    request = urllib.request.Request(
        f"{server.base_url}/api/rooms/{room}/invites",
        data=b"",
        method="POST",
        headers={"Authorization": f"Bearer {MODERATOR_TOKEN}"},
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        return str(json.loads(reply.read())["url"])


def live(page: Page) -> None:
    expect(page.locator("#status")).to_have_attribute("data-state", "live", timeout=WAIT_MS)


def send(page: Page, message: str) -> None:
    page.fill("#message", message)
    page.press("#message", "Enter")


def test_a_token_is_kept_for_the_tab_out_of_the_address_bar_and_counts_on_the_socket(new_context, server):
    room = f"lobby-{uuid.uuid4().hex[:8]}"
    token = hs256(claims("u-1", name="Ann Signed"))
    page = new_context().new_page()
    page.goto(f"{server.base_url}/{room}/?token={token}")
    live(page)
    assert page.evaluate("location.search") == ""
    assert page.evaluate("sessionStorage.getItem('rooms.token')") == token
    expect(page.locator("#handle")).to_have_value("Ann Signed")
    send(page, "signed in")
    expect(page.locator("#chat li .handle")).to_have_text("Ann Signed", timeout=WAIT_MS)
    # Reloaded, the address holds no token: the sign-in page asks again with the one the tab kept.
    page.reload()
    live(page)
    assert page.evaluate("location.pathname + location.search") == f"/{room}/"
    expect(page.locator("#chat li .text")).to_have_text("signed in")
    # Another tab of the same browser has no token: sign-in needed.
    other = page.context.new_page()
    response = other.goto(f"{server.base_url}/{room}/")
    assert response is not None and response.status == 401
    expect(other.locator("h1")).to_have_text("Sign-in needed")


def test_an_invite_is_kept_for_its_room_and_a_refused_token_is_forgotten(new_context, server):
    room = f"team-{uuid.uuid4().hex[:8]}"
    page = new_context().new_page()
    page.goto(f"{server.base_url}/lobby/?token={hs256(claims('u-2', name='Bob'))}")
    live(page)
    page.goto(server.base_url + invite_to(server, room))
    live(page)
    assert page.evaluate("location.search") == ""
    send(page, "in by invite")
    expect(page.locator("#chat li .handle")).to_have_text("Bob", timeout=WAIT_MS)
    page.reload()  # the private room's 404 asks again with the kept token and invite
    live(page)
    assert page.evaluate("location.pathname + location.search") == f"/{room}/"
    # A kept token that is no good any more is tried once, then dropped, and the address is left clean.
    expired = hs256(claims("u-2", seconds=-120))
    page.evaluate(f"sessionStorage.setItem('rooms.token', '{expired}')")
    page.goto(f"{server.base_url}/lobby/")
    page.wait_for_function("sessionStorage.getItem('rooms.token') === null")
    expect(page.locator("h1")).to_have_text("Sign-in needed")
    assert page.evaluate("location.pathname + location.search") == "/lobby/"


def test_older_messages_of_a_private_room_load_with_the_tab_s_token_and_invite(new_context, server):
    room = f"team-{uuid.uuid4().hex[:8]}"
    for n in range(60):
        request = urllib.request.Request(
            f"{server.base_url}/api/rooms/{room}/messages",
            data=json.dumps({"handle": "mod", "message": f"message {n}"}).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {MODERATOR_TOKEN}"},
        )
        urllib.request.urlopen(request, timeout=10).close()
    page = new_context().new_page()
    page.goto(f"{server.base_url}/lobby/?token={hs256(claims('u-3', name='Cy'))}")
    live(page)
    page.goto(server.base_url + invite_to(server, room))
    live(page)
    expect(page.locator("#chat > li")).to_have_count(50)
    page.evaluate("document.getElementById('log').scrollTop = 0")
    expect(page.locator("#chat > li")).to_have_count(60, timeout=WAIT_MS)
    expect(page.locator("#room-start")).to_be_visible()

"""The steps of a moderation page test: ``server.py`` with a moderator token and the secret of signed tokens in
its config, the moderation API as plain requests, and the page's moderator panel and message tools."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Locator, Page, expect

from tests.support.browser import WAIT_MS
from tests.support.processes import ServerProcess
from tests.support.tokens import MODERATOR_TOKEN, SECRET

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


@contextmanager
def moderated_server() -> Iterator[ServerProcess]:
    """``server.py`` as a real process with ``CONFIG``, healthy; stopped afterwards."""
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

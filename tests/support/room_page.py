"""What page tests of the room's log look at: the frames a page sends, and a message's item by its text."""

from __future__ import annotations

import json
import re
from typing import Any

from playwright.sync_api import Locator, Page


def sent_frames(page: Page) -> list[dict[str, Any]]:
    """Every JSON frame the page sends on its sockets from now on (listen before the page opens its socket)."""
    frames: list[dict[str, Any]] = []
    page.on("websocket", lambda socket: socket.on("framesent", lambda payload: frames.append(json.loads(payload))))
    return frames


def message(page: Page, text: str) -> Locator:
    """The log's item whose text reads exactly ``text``."""
    return page.locator("#chat > li").filter(has=page.locator(".text", has_text=re.compile(f"^{re.escape(text)}$")))


def edit_last_own(page: Page, text: str) -> None:
    """Edits the page's last own message to ``text`` as a reader does: ↑ in the empty field, new text, Enter."""
    page.focus("#message")
    page.keyboard.press("ArrowUp")
    page.fill("#message", text)
    page.keyboard.press("Enter")

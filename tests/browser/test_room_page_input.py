"""What the room page sends: the features its socket asks for, the names it announces, and every control
reached by keyboard alone. In a real headless Chromium against ``server.py`` running as a real process (the
fixtures of ``tests/browser/conftest.py``)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from rooms.protocol import ProtocolError, check_handle
from tests.support.browser import PRESENCE_WAIT_MS, named, open_room, post_many

pytestmark = pytest.mark.timeout(180)


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
            check_handle(handle.strip(), 32)
        except ProtocolError:
            assert verdict is not None, f"the page would announce {handle!r}, which the server refuses"
        else:
            assert verdict is None, f"the page refuses {handle!r}, which the server takes"

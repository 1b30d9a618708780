"""Whether the running server already does what a page test needs of "Messages that change" and "Search":
each is asked of the server itself (a frame or a request it refuses today as unknown), so the tests that need
it skip, saying so, until the server's side lands, and run from then on without a change."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

from tests.support.clients import connect, receive_json, send_json

UNKNOWN_TYPE = "unknown message type"
A_KEY = "k" * 32


def _socket_answer(port: int, frame: dict[str, object]) -> dict[str, object]:
    """The server's answer to one frame on a fresh socket of a room of its own (one with no messages)."""

    async def ask() -> dict[str, object]:
        ws = await connect(port, f"probe-{uuid.uuid4().hex[:12]}", features="edits,reactions,deletes")
        try:
            await send_json(ws, {"type": "hello", "handle": "probe"})
            await send_json(ws, frame)
            return await receive_json(ws, timeout=5)
        finally:
            ws.close()

    # On a thread of its own: the browser tests' Playwright keeps an event loop of its own on this one.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, ask()).result(timeout=30)


def _status(base_url: str, method: str, path: str, body: object = None, headers: dict[str, str] | None = None) -> int:
    data = json.dumps(body).encode() if body is not None else None
    sent = {"Content-Type": "application/json"} if data is not None else {}
    request = urllib.request.Request(base_url + path, data=data, method=method, headers=sent | (headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as refused:
        return int(refused.code)


def _knows(port: int, frame_type: str, frame: dict[str, object]) -> bool:
    answer = _socket_answer(port, {"type": frame_type, **frame})
    return UNKNOWN_TYPE not in str(answer.get("error", ""))


def missing(base_url: str, port: int, feature: str) -> str | None:
    """Why the server cannot yet serve ``feature`` ("edits", "author deletes", "replies", "reactions",
    "search"), or None when it can."""
    room = f"probe-{uuid.uuid4().hex[:12]}"
    if feature == "edits":
        ok = _knows(port, "edit", {"id": "1", "message": "x", "author_key": A_KEY}) and (
            _status(base_url, "PATCH", f"/api/rooms/{room}/messages/1", {"message": "x", "author_key": A_KEY}) != 405
        )
    elif feature == "author deletes":
        # Today a DELETE is a moderator's alone: without a token it is 401 whatever else it carries.
        ok = _status(base_url, "DELETE", f"/api/rooms/{room}/messages/1", headers={"Author-Key": A_KEY}) != 401
    elif feature == "replies":
        # A reply to a message that is not in the room is refused by a server that knows replies.
        answer = {"handle": "probe", "message": "probe", "reply_to": "no-such-message"}
        ok = _status(base_url, "POST", f"/api/rooms/{room}/messages", answer) == 400
    elif feature == "reactions":
        ok = _knows(port, "react", {"id": "1", "emoji": "\N{THUMBS UP SIGN}", "on": True})
    elif feature == "search":
        ok = _status(base_url, "GET", f"/api/rooms/{room}/search?q=probe") != 404
    else:
        raise ValueError(feature)
    return None if ok else f"needs the server's {feature} feature (docs/protocol.md), which it does not have yet"

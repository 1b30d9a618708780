"""Real WebSocket clients for the integration tests."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect


async def connect(
    port: int, room: str, since: str | None = None, headers: dict[str, str] | None = None
) -> WebSocketClientConnection:
    url = f"ws://127.0.0.1:{port}/chat/{room}/" + (f"?since={since}" if since is not None else "")
    return await websocket_connect(HTTPRequest(url, headers=headers or {}))


async def send_json(ws: WebSocketClientConnection, payload: dict[str, Any]) -> None:
    await ws.write_message(json.dumps(payload))


async def receive_json(ws: WebSocketClientConnection, timeout: float = 3) -> dict[str, Any]:
    frame = await asyncio.wait_for(ws.read_message(), timeout)
    assert frame is not None, f"socket closed with {ws.close_code} {ws.close_reason!r}"
    decoded: dict[str, Any] = json.loads(frame)
    return decoded


async def receive_messages(ws: WebSocketClientConnection, count: int, timeout: float = 5) -> list[dict[str, Any]]:
    return [await receive_json(ws, timeout) for _ in range(count)]


async def assert_silent(ws: WebSocketClientConnection, wait: float = 0.3) -> None:
    """Nothing more arrives for ``wait`` seconds."""
    try:
        frame = await asyncio.wait_for(ws.read_message(), wait)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected frame: {frame!r}")


async def wait_closed(ws: WebSocketClientConnection, timeout: float = 5) -> int | None:
    """Read until the server closes the socket; the close code."""

    async def drain() -> None:
        while await ws.read_message() is not None:
            pass

    await asyncio.wait_for(drain(), timeout)
    return ws.close_code

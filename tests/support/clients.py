"""Real WebSocket clients for the integration tests."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

TEXT, CLOSE, PING = 0x1, 0x8, 0x9  # WebSocket opcodes (RFC 6455 5.2)


async def connect(
    port: int,
    room: str,
    since: str | None = None,
    headers: dict[str, str] | None = None,
    features: str | None = None,
) -> WebSocketClientConnection:
    query = urlencode({name: value for name, value in (("since", since), ("features", features)) if value is not None})
    url = f"ws://127.0.0.1:{port}/chat/{room}/" + (f"?{query}" if query else "")
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


def said_by(ws: WebSocketClientConnection) -> Callable[[str], Awaitable[None]]:
    """``text`` -> that text sent into the room by ``ws`` (as the marker's sender)."""
    return lambda text: send_json(ws, {"handle": "marker", "message": text})


async def assert_next_is_marker(
    ws: WebSocketClientConnection, send: Callable[[str], Awaitable[object]] | None = None
) -> dict[str, Any]:
    """Nothing more was on its way to ``ws``: a marker sent into its room now (by ``send``, given the marker's
    text: another socket of the room, the API, the hub; by default ``ws`` itself) is the very next frame it
    receives. A socket's frames arrive in the order they were sent, so anything due before would come
    first. The marker as received."""
    text = f"marker {uuid.uuid4().hex}"
    await (send or said_by(ws))(text)
    frame = await receive_json(ws)
    assert (frame.get("type"), frame.get("message")) == ("message", text), f"unexpected frame: {frame!r}"
    return frame


async def wait_closed(ws: WebSocketClientConnection, timeout: float = 5) -> int | None:
    """Read until the server closes the socket; the close code."""

    async def drain() -> None:
        while await ws.read_message() is not None:
            pass

    await asyncio.wait_for(drain(), timeout)
    return ws.close_code


async def raw_handshake(port: int, path: str, source: str | None = None) -> socket.socket:
    """A client that completes the handshake and then never reads: a small receive buffer makes it
    fall behind at once. ``source``: the loopback address it connects from."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    if source is not None:
        sock.bind((source, 0))
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    await loop.sock_sendall(
        sock,
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode(),
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += await loop.sock_recv(sock, 1)
    assert b" 101 " in response.split(b"\r\n")[0]
    return sock


async def read_until_closed(sock: socket.socket, timeout: float = 10, received: bytes = b"") -> list[tuple[int, bytes]]:
    """Every frame the server sent until it ended the connection, as (opcode, payload); ``received``: what was
    read from it before."""
    loop = asyncio.get_running_loop()
    data = received
    deadline = loop.time() + timeout
    while chunk := await _receive_before(sock, deadline, data):
        data += chunk
    return _frames(data)


async def _receive_before(sock: socket.socket, deadline: float, received: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    try:
        return await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), deadline - loop.time())
    except TimeoutError:
        frames = _frames(received)
        raise AssertionError(
            f"the server did not end the connection; the last of its {len(frames)} frames: "
            f"{[(opcode, payload[:200]) for opcode, payload in frames[-3:]]}"
        ) from None


def _frames(data: bytes) -> list[tuple[int, bytes]]:
    frames = []
    offset = 0
    while offset < len(data):  # server frames are never masked
        opcode, length = data[offset] & 0x0F, data[offset + 1] & 0x7F
        offset += 2
        if length == 126:
            length = struct.unpack("!H", data[offset : offset + 2])[0]
            offset += 2
        elif length == 127:
            length = struct.unpack("!Q", data[offset : offset + 8])[0]
            offset += 8
        frames.append((opcode, data[offset : offset + length]))
        offset += length
    return frames


async def read_until_close_frame(sock: socket.socket, timeout: float = 10) -> int:
    """Read everything the server sent; the status code of its close frame."""
    for opcode, payload in await read_until_closed(sock, timeout):
        if opcode == CLOSE:
            return int(struct.unpack("!H", payload[:2])[0])
    raise AssertionError("no close frame before the connection ended")

"""Real WebSocket clients for the integration tests."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
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


async def raw_handshake(port: int, path: str) -> socket.socket:
    """A client that completes the handshake and then never reads: a small receive buffer makes it
    fall behind at once."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
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


async def read_until_close_frame(sock: socket.socket, timeout: float = 10) -> int:
    """Read everything the server sent; the status code of its close frame."""
    loop = asyncio.get_running_loop()
    data = b""
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        chunk = await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), timeout)
        if not chunk:
            break
        data += chunk
    offset = 0
    while offset < len(data):
        opcode, length = data[offset] & 0x0F, data[offset + 1] & 0x7F
        offset += 2
        if length == 126:
            length = struct.unpack("!H", data[offset : offset + 2])[0]
            offset += 2
        elif length == 127:
            length = struct.unpack("!Q", data[offset : offset + 8])[0]
            offset += 8
        if opcode == 0x8:
            return int(struct.unpack("!H", data[offset : offset + 2])[0])
        offset += length
    raise AssertionError("no close frame before the connection ended")

"""A closed socket's objects are freed by reference counting, the moment nothing uses them any more: none
of them waits for the cycle collector, whichever way the socket ended. The server can then run the
collector's full passes rarely (``rooms.service.collector``) without closed sockets piling up meanwhile. And
once a crowd has gone, what was kept for its addresses is let go too."""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import struct
from collections import Counter
from collections.abc import Iterator

import pytest
from tornado.httputil import HTTPServerRequest
from tornado.iostream import IOStream

from rooms.access.addresses import limit_key
from rooms.room.session import SocketSession
from rooms.web.chat_socket import ChatSocket
from rooms.web.frame_protocol import FrameBudgetProtocol
from rooms.web.frame_writer import FrameWriter
from rooms.web.handlers.socket import ChatSocketHandler
from tests.support.apps import app_config
from tests.support.clients import CLOSE, TEXT, raw_handshake, read_until_close_frame, read_until_closed
from tests.support.messages import post
from tests.support.waiting import eventually

ROOM = "lobby"
SEND_BUFFER = 16384
# What one socket is made of on the server, each kept by the others while it is open.
SOCKET_PARTS = (
    ChatSocket,
    ChatSocketHandler,
    SocketSession,
    FrameBudgetProtocol,
    FrameWriter,
    IOStream,
    HTTPServerRequest,
)


@pytest.fixture
def config():
    return app_config(limits={"send_buffer_bytes": SEND_BUFFER})


@pytest.fixture
def collector_off() -> Iterator[None]:
    """Only reference counting frees anything while the test runs."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def census() -> Counter[str]:
    return Counter(part.__name__ for obj in gc.get_objects() for part in SOCKET_PARTS if isinstance(obj, part))


def client_frame(opcode: int, payload: bytes, masked: bool = True) -> bytes:
    """One frame as a client sends it (RFC 6455 5.2), short payloads only."""
    if not masked:
        return bytes([0x80 | opcode, len(payload)]) + payload
    mask = os.urandom(4)
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def send(sock: socket.socket, frame: bytes) -> None:
    await asyncio.get_running_loop().sock_sendall(sock, frame)


def open_sockets() -> list[ChatSocket]:
    return [o for o in gc.get_objects() if isinstance(o, ChatSocket) and o.connection is not None]


@pytest.mark.gen_test(timeout=30)
async def test_a_closed_sockets_objects_are_freed_without_the_cycle_collector(
    http_server, http_port, app, collector_off
):
    before = census()
    for _ in range(3):  # the same again: nothing of a round is left to the next
        # The client's close handshake, after it posted a message (its store answered).
        closing = await raw_handshake(http_port, f"/chat/{ROOM}/")
        await send(closing, client_frame(TEXT, b'{"handle": "ann", "message": "hi"}'))
        await send(closing, client_frame(CLOSE, struct.pack("!H", 1000)))
        await read_until_closed(closing)
        closing.close()
        # The same through Tornado's handler, which answers what the server's own handshake leaves to it
        # (here a label percent-encoded).
        through_tornado = await raw_handshake(http_port, f"/chat/{ROOM[:-1]}%{ord(ROOM[-1]):X}/")
        await send(through_tornado, client_frame(CLOSE, struct.pack("!H", 1000)))
        await read_until_closed(through_tornado)
        through_tornado.close()
        # A client that vanishes without a close frame.
        vanishing = await raw_handshake(http_port, f"/chat/{ROOM}/")
        await eventually(lambda: app.hub.online(ROOM) == 1)
        vanishing.close()
        # The server's close: a frame that is not masked (1002).
        unmasked = await raw_handshake(http_port, f"/chat/{ROOM}/")
        await send(unmasked, client_frame(TEXT, b"{}", masked=False))
        assert await read_until_close_frame(unmasked) == 1002
        unmasked.close()
        # A reader too slow for what it is sent (1013), which then goes without answering the close.
        slow = await raw_handshake(http_port, f"/chat/{ROOM}/")
        await eventually(lambda: app.hub.online(ROOM) == 1)
        (open_socket,) = open_sockets()
        open_socket.connection.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        del open_socket
        await post(app.hub, ROOM, "ann", "x" * (4 * SEND_BUFFER))
        await eventually(lambda: app.hub.online(ROOM) == 0)
        slow.close()
        await eventually(lambda: census() == before, message=lambda: f"still there: {census() - before}")


@pytest.mark.gen_test(timeout=30)
async def test_what_was_kept_for_a_crowds_addresses_is_let_go_once_it_has_gone(http_server, http_port, app):
    crowd = [await raw_handshake(http_port, f"/chat/{ROOM}/", source=f"127.0.0.{n}") for n in range(2, 22)]
    await eventually(lambda: app.hub.online(ROOM) == len(crowd))
    assert app.hub.rates.addresses_remembered() == len(crowd)
    for client in crowd:
        client.close()
    await eventually(lambda: app.hub.rates.addresses_with_sockets() == 0)
    app.forget_departed()
    assert app.hub.rates.addresses_remembered() == 0
    assert limit_key.cache_info().currsize == 0
    # And the limits hold as before for whoever comes next.
    again = await raw_handshake(http_port, f"/chat/{ROOM}/", source="127.0.0.2")
    await eventually(lambda: app.hub.online(ROOM) == 1)
    assert app.hub.rates.addresses_remembered() == 1
    again.close()

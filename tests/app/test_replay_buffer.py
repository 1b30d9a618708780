"""A replay from ``?since=`` is held to the socket's send buffer: a page is read only as the socket drains.

Real sockets against the server in this process: clients that never read (a small receive buffer, so the
kernel takes little), and clients that read every frame. What the server holds for a socket is measured
where it lives: the bytes waiting in its stream, and the memory Python allocated meanwhile (tracemalloc).
"""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import struct
import tracemalloc
from typing import Any

import pytest

from rooms.room.session import SocketSession
from rooms.web.chat_socket import ChatSocket
from tests.support.apps import app_config
from tests.support.clients import CLOSE, PING, raw_handshake, read_until_close_frame
from tests.support.messages import post
from tests.support.metrics import app_sample
from tests.support.waiting import eventually

SEND_BUFFER = 256 * 1024
TEXT = 16000  # characters of each message: a page of the old 200 was 3.2 MB
MESSAGES = 600  # 9.6 MB: far more than the kernel's buffers take for a client that does not read
ROOM = "big"


@pytest.fixture
def config(request: pytest.FixtureRequest):
    ping_interval = getattr(request, "param", 0)  # no pings unless a test asks: the bound is the pacing's
    return app_config(
        limits={"send_buffer_bytes": SEND_BUFFER, "max_message_chars": TEXT + 100, "connections_per_address": 100},
        server={"ping_interval": ping_interval},
    )


async def fill(app: Any, count: int = MESSAGES) -> list[str]:
    return [(await post(app.hub, ROOM, "ann", f"m{n} " + "x" * TEXT)).message.id for n in range(count)]


def held_sockets(app: Any) -> list[ChatSocket]:
    return app.hub.fanout.held(ROOM)


class FrameReader:
    """Reads a raw socket's WebSocket frames (server frames are never masked)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.data = b""

    async def frame(self, timeout: float = 10) -> tuple[int, bytes]:
        loop = asyncio.get_running_loop()
        while (parsed := self._parse()) is None:
            chunk = await asyncio.wait_for(loop.sock_recv(self.sock, 1 << 16), timeout)
            assert chunk, "the server ended the connection"
            self.data += chunk
        return parsed

    async def message(self) -> dict[str, Any]:
        """The next frame other than a ping, which must be a text frame."""
        while True:
            opcode, payload = await self.frame()
            if opcode == PING:
                continue
            assert opcode != CLOSE, f"closed with {struct.unpack('!H', payload[:2])[0]}: {payload[2:]!r}"
            decoded: dict[str, Any] = json.loads(payload)
            return decoded

    def _parse(self) -> tuple[int, bytes] | None:
        data = self.data
        if len(data) < 2:
            return None
        length, offset = data[1] & 0x7F, 2
        if length == 126:
            if len(data) < 4:
                return None
            length, offset = struct.unpack("!H", data[2:4])[0], 4
        elif length == 127:
            if len(data) < 10:
                return None
            length, offset = struct.unpack("!Q", data[2:10])[0], 10
        if len(data) < offset + length:
            return None
        self.data = data[offset + length :]
        return data[0] & 0x0F, data[offset : offset + length]


@pytest.mark.gen_test(timeout=120)
async def test_a_socket_that_never_reads_costs_about_half_its_send_buffer_however_large_the_room(
    http_server, http_port, app
):
    await fill(app)
    sockets = 10
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        readers = [await raw_handshake(http_port, f"/chat/{ROOM}/?since=0") for _ in range(sockets)]
        # Each replay stops once the kernel takes no more: then its stream holds what it could not send
        # (or, where a replay overran the send buffer, its socket was closed).
        await eventually(
            lambda: (
                app_sample(app, "rooms_slow_clients_closed_total")
                + sum(h.writer.buffered > 0 for h in held_sockets(app))
                == sockets
            )
        )
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert peak < sockets * SEND_BUFFER, f"{peak} bytes allocated at most for {sockets} sockets"
    assert app_sample(app, "rooms_slow_clients_closed_total") == 0  # held back, not closed: nothing is due
    for handler in held_sockets(app):
        assert handler.writer.buffered <= SEND_BUFFER // 2 + TEXT + 200  # half its buffer and one message
    for sock in readers:
        sock.close()
    await eventually(lambda: app_sample(app, "rooms_active_rooms") == 0)


@pytest.mark.gen_test(timeout=120)
async def test_a_reading_socket_gets_the_whole_replay_and_then_what_came_live_meanwhile_in_order(
    http_server, http_port, app
):
    stored = await fill(app)
    sock = await raw_handshake(http_port, f"/chat/{ROOM}/?since=0")  # a small receive buffer, but it reads
    reader = FrameReader(sock)
    first = await reader.message()
    live = [(await post(app.hub, ROOM, "bob", f"live {n}")).message.id for n in range(5)]
    # They came while its replay was still running: they wait in its backlog.
    assert [app.hub.fanout.held_bytes(handler, ROOM) > 0 for handler in held_sockets(app)] == [True]
    received = [first["id"]] + [(await reader.message())["id"] for _ in range(len(stored) + len(live) - 1)]
    assert received == stored + live  # every message once, in the room's order
    marker = (await post(app.hub, ROOM, "ann", "marker")).message.id
    assert (await reader.message())["id"] == marker  # nothing more was due before it
    assert app_sample(app, "rooms_slow_clients_closed_total") == 0
    sock.close()


@pytest.mark.parametrize("config", [1.0], indirect=True)
@pytest.mark.gen_test(timeout=120)
async def test_a_replay_slower_than_the_pings_goes_on_while_its_socket_reads(http_server, http_port, app):
    stored = await fill(app)
    sock = await raw_handshake(http_port, f"/chat/{ROOM}/?since=0")
    reader = FrameReader(sock)
    received = []
    started = asyncio.get_running_loop().time()
    for _ in stored:  # its pongs are not read until the replay is over: what it takes shows it is there
        received.append((await reader.message())["id"])
        await asyncio.sleep(0.005)
    assert asyncio.get_running_loop().time() - started > 3  # three ping intervals: two unanswered close a socket
    assert received == stored
    assert app_sample(app, "rooms_slow_clients_closed_total") == 0
    sock.close()


@pytest.mark.parametrize("config", [0.1], indirect=True)
@pytest.mark.gen_test(timeout=60)
async def test_a_replaying_socket_that_takes_nothing_is_closed_with_1013(http_server, http_port, app):
    await fill(app, 300)
    sock = await raw_handshake(http_port, f"/chat/{ROOM}/?since=0")
    # Within two ping intervals of its replay's stalling, with no message live in the room meanwhile.
    await eventually(lambda: app_sample(app, "rooms_slow_clients_closed_total") == 1)
    assert app_sample(app, "rooms_active_rooms") == 0
    assert await read_until_close_frame(sock, timeout=20) == 1013  # after what it was sent before
    sock.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_replaying_socket_whose_live_backlog_outgrows_its_send_buffer_is_closed_with_1013(
    http_server, http_port, app
):
    await fill(app, 300)
    sock = await raw_handshake(http_port, f"/chat/{ROOM}/?since=0")
    await eventually(lambda: [h.writer.buffered > 0 for h in held_sockets(app)] == [True])
    for n in range(SEND_BUFFER // TEXT + 1):  # more than it may be sent, while its replay waits for it
        await post(app.hub, ROOM, "bob", f"live {n} " + "y" * TEXT)
    await eventually(lambda: app_sample(app, "rooms_slow_clients_closed_total") == 1)
    assert app_sample(app, "rooms_active_rooms") == 0  # out of the room at once: what was held for it is gone
    assert await read_until_close_frame(sock, timeout=20) == 1013
    sock.close()


@pytest.mark.gen_test(timeout=120)
async def test_sockets_that_never_read_leave_nothing_behind_when_they_go(http_server, http_port, app):
    await fill(app, 300)
    gc.collect()
    # An earlier test's sessions (a failure report may still hold one) are not this test's to count.
    earlier = [o for o in gc.get_objects() if isinstance(o, SocketSession)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(5):
            socks = [await raw_handshake(http_port, f"/chat/{ROOM}/?since=0") for _ in range(20)]
            await eventually(lambda: sum(h.writer.buffered > 0 for h in held_sockets(app)) == 20)
            for sock in socks:
                sock.close()  # with unread data: a reset, while each replay waits for its socket to drain
            await eventually(lambda: app_sample(app, "rooms_active_rooms") == app_sample(app, "rooms_connections") == 0)
        gc.collect()
        await asyncio.sleep(0)
        left = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # This app's own handlers, and sessions made since: what an earlier test's failure report holds is not
    # this test's to count.
    census = [
        type(o).__name__
        for o in gc.get_objects()
        if (isinstance(o, ChatSocket) and o.site is app.deps["site"])
        or (isinstance(o, SocketSession) and not any(o is session for session in earlier))
    ]
    assert census == []
    assert left < SEND_BUFFER, f"{left} bytes still allocated after 100 sockets came and went"

"""The socket session without a socket: what frames become, in the order they were sent."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Iterator

import pytest
import tornado.ioloop

from backends.address_blocks import AddressBlocks
from backends.memory import MemoryBackend
from rooms.protocol import Feature, Limits
from rooms.room.hub import RoomHub
from rooms.room.metrics import RoomsMetrics
from rooms.room.rates import RatePolicy
from rooms.room.session import SocketSession
from rooms.room.typing import TYPING_BATCH_SECONDS
from tests.support.apps import stop_hub
from tests.support.messages import post
from tests.support.waiting import eventually


class FakeSocket:
    """Keeps what the session sends; decodes the frames (unmasked text frames with short payloads)."""

    def __init__(self) -> None:
        self.frames: list[dict[str, object]] = []
        self.closed: tuple[int | None, str | None] | None = None
        self.writes = 0

    def send_frames(self, data: bytes, frames: int = 1) -> None:
        self.writes += 1
        before = len(self.frames)
        while data:
            length = data[1] & 0x7F
            offset = 2
            if length == 126:
                length, offset = int.from_bytes(data[2:4], "big"), 4
            self.frames.append(json.loads(data[offset : offset + length]))
            data = data[offset + length :]
        assert len(self.frames) - before == frames  # the count a socket's end reports

    def close_going_away(self) -> None:
        self.close(1001, "going away")

    def send_room(self) -> int:
        return 1 << 20  # keeps everything it is sent

    async def drained(self) -> bool:
        return self.closed is None

    def close_too_slow(self) -> None:
        self.close(1013, "too slow")

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        self.closed = (code, reason)


@pytest.fixture
def hubs(io_loop: tornado.ioloop.IOLoop) -> Iterator[list[RoomHub]]:
    """The hubs a test made, stopped after it: none of their presence ticks is left for a later test."""
    made: list[RoomHub] = []
    yield made
    for hub in made:
        io_loop.run_sync(functools.partial(stop_hub, hub))


async def session(hubs: list[RoomHub], burst: int = 20) -> tuple[SocketSession, FakeSocket, RoomHub]:
    backend = MemoryBackend()
    await backend.start()
    hub = RoomHub(
        backend,
        RoomsMetrics(),
        RatePolicy(
            0.001,
            burst,
            address_messages_per_second=1000,
            address_burst=1000,
            connections_per_address=1,
            blocks=AddressBlocks(),
        ),
        page_size=50,
    )
    hubs.append(hub)
    socket = FakeSocket()
    await hub.join(socket, "lobby")
    await hub.go_live(socket, "lobby", None)
    return SocketSession(hub, "lobby", socket, Limits(), max_refused=burst), socket, hub


async def receive_all(handler: SocketSession, frames: list[str | bytes]) -> None:
    """As Tornado reads: the next frame only once what ``receive`` returned is done."""
    for frame in frames:
        wait = handler.receive(frame)
        if wait is not None:
            await wait


async def sent_back(hub: RoomHub, socket: FakeSocket, count: int) -> list[dict[str, object]]:
    """The ``count`` frames the session sent, and nothing more: once they are in, a marker posted to the
    room is the next frame (frames reach a socket in the order sent)."""
    await eventually(lambda: len(socket.frames) >= count, timeout=3, message=lambda: socket.frames)
    await post(hub, "lobby", "marker", "marker")
    await eventually(lambda: len(socket.frames) > count, timeout=3)
    assert socket.frames[count]["message"] == "marker", socket.frames[count:]
    return socket.frames[:count]


@pytest.mark.gen_test
async def test_messages_and_errors_are_answered_in_the_order_sent(hubs):
    handler, socket, hub = await session(hubs)
    frames: list[str | bytes] = [
        json.dumps({"handle": "ann", "message": "one"}),
        "not json",
        b"binary",
        json.dumps({"handle": "ann", "message": "two", "client_id": "c"}),
        json.dumps({"handle": "ann", "message": "two again", "client_id": "c"}),
    ]
    await receive_all(handler, frames)
    assert [(f["type"], f.get("message") or f.get("code")) for f in await sent_back(hub, socket, 5)] == [
        ("message", "one"),
        ("error", "invalid_json"),
        ("error", "invalid_message"),
        ("message", "two"),
        ("message", "two"),  # the resend, answered to its sender alone with what was stored
    ]
    assert socket.closed is None


@pytest.mark.gen_test
async def test_over_the_rate_is_refused_then_closed_with_1008_if_it_keeps_on(hubs):
    handler, socket, hub = await session(hubs, burst=3)
    await receive_all(handler, [json.dumps({"handle": "ann", "message": f"m{n}"}) for n in range(7)])
    kinds = [f.get("message") or f.get("code") for f in await sent_back(hub, socket, 6)]
    assert kinds == ["m0", "m1", "m2", "rate_limited", "rate_limited", "rate_limited"]
    assert socket.closed == (1008, "rate limit exceeded")


async def typing_room(hubs: list[RoomHub], typists: int) -> tuple[list[FakeSocket], list[SocketSession]]:
    """A room of a watcher (the first socket) and ``typists`` sessions, all asking for typing, the
    sessions announced as t0, t1, ..."""
    _, _, hub = await session(hubs)
    sockets = [FakeSocket() for _ in range(typists + 1)]
    for socket in sockets:
        await hub.join(socket, "lobby", frozenset({Feature.TYPING}))
        await hub.go_live(socket, "lobby", None)
    sessions = [SocketSession(hub, "lobby", socket, Limits(), max_refused=20) for socket in sockets[1:]]
    for n, typist in enumerate(sessions):
        await receive_all(typist, [json.dumps({"type": "hello", "handle": f"t{n}"})])
    return sockets, sessions


def typing_seen(socket: FakeSocket) -> list[object]:
    return [frame["handle"] for frame in socket.frames if frame.get("type") == "typing"]


async def iterations(count: int) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


@pytest.mark.gen_test
async def test_a_quiet_rooms_typing_goes_out_at_once_a_busy_rooms_in_one_write_per_batch(hubs):
    sockets, typists = await typing_room(hubs, 5)
    watcher = sockets[0]
    loop = asyncio.get_running_loop()
    await receive_all(typists[0], [json.dumps({"type": "typing"})])
    sent_at = loop.time()
    await iterations(2)
    assert typing_seen(watcher) == ["t0"] and watcher.writes == 1
    # Within the batch time of that write: held, then out together in one write to each socket.
    for typist in typists[1:]:
        await receive_all(typist, [json.dumps({"type": "typing"})])
    await iterations(2)
    if loop.time() - sent_at < TYPING_BATCH_SECONDS:
        assert typing_seen(watcher) == ["t0"]
    await eventually(lambda: typing_seen(watcher) == ["t0", "t1", "t2", "t3", "t4"])
    assert watcher.writes == 2
    assert loop.time() - sent_at >= TYPING_BATCH_SECONDS
    # A typist gets the others' frames of the batch, never its own.
    assert typing_seen(sockets[2]) == ["t0", "t2", "t3", "t4"] and sockets[2].writes == 2


@pytest.mark.gen_test
async def test_a_typing_frame_held_for_a_batch_goes_out_before_its_typists_message(hubs):
    sockets, typists = await typing_room(hubs, 2)
    watcher = sockets[0]
    await receive_all(typists[0], [json.dumps({"type": "typing"})])
    await iterations(2)
    assert typing_seen(watcher) == ["t0"]
    await receive_all(typists[1], [json.dumps({"type": "typing"}), json.dumps({"handle": "t1", "message": "hi"})])
    await eventually(lambda: any(frame.get("message") == "hi" for frame in watcher.frames))
    kinds = [(frame["type"], frame.get("handle")) for frame in watcher.frames]
    assert kinds == [("typing", "t0"), ("typing", "t1"), ("message", "t1")]

"""``gap`` exactly when history no longer holds every message after ``since`` (docs/protocol.md, "Recovery"), on every
backend, while pruning runs at the same moment: never when only ``since`` itself, or what came before it, is
gone; always when a message after it is.

A writer fills a room far past ``retain_per_room`` while replays read from the ids around the prune edge, the
ones pruning is taking away right then. Each replay is judged by its own page: no message is deleted here, so
history holds everything after ``since`` exactly when the page starts with the message stored right after it.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from backends.address_blocks import AddressBlocks
from backends.base import Backend, Replay, StoredMessage
from rooms.room.hub import RoomHub
from rooms.room.metrics import RoomsMetrics
from rooms.room.rates import RatePolicy
from rooms.room.replay import FIRST_REPLAY_PAGE
from tests.support.apps import stop_hub
from tests.support.messages import post, store, store_soon
from tests.support.redis_away import away_from_pub_sub
from tests.support.waiting import eventually

ROOM = "edge"
RETAIN = 10
MESSAGES = 600
BATCH = 3  # stores started together: one commit on SQL, one pipeline on Redis
EDGE = range(RETAIN - 3, RETAIN + 4)  # how far behind the newest message each replay starts


async def fill(backend: Backend, stored: list[StoredMessage]) -> None:
    for first in range(0, MESSAGES, BATCH):
        batch = [store_soon(backend, ROOM, "ann", f"m{n}") for n in range(first, first + BATCH)]
        stored.extend(result.message for result in await asyncio.gather(*batch))


def judge(replay: Replay, since: StoredMessage, successor: StoredMessage) -> bool:
    """Whether the replay was a gap; fails unless it says gap exactly when the message after ``since`` is gone."""
    page = replay.page.messages
    assert replay.after == since.id
    assert page, "retention keeps the newest messages: a replay from before them is never empty"
    if page[0] == successor:
        assert not replay.gap, f"gap since {since.id}, yet history still held {successor.id} and all after it"
    else:
        assert replay.gap, f"no gap since {since.id}, yet {successor.id} is gone (the page starts at {page[0].id})"
    return replay.gap


@pytest.mark.timeout(300)
@pytest.mark.gen_test(timeout=240)
async def test_a_replay_at_the_prune_edge_is_a_gap_exactly_when_a_later_message_is_gone(make_backend):
    backend = await make_backend(retain_per_room=RETAIN)
    stored: list[StoredMessage] = []
    writer = asyncio.ensure_future(fill(backend, stored))
    verdicts: list[bool] = []
    while not writer.done():
        count = len(stored)
        for behind in EDGE:
            index = count - 1 - behind
            if index >= 0:
                replay = await backend.replay(ROOM, stored[index].id, 200)
                verdicts.append(judge(replay, stored[index], stored[index + 1]))
        await asyncio.sleep(0)  # the memory backend answers without ever yielding to the writer
    await writer
    # Both answers came, so the replays ran where pruning was at work.
    assert verdicts.count(True) and verdicts.count(False), f"{len(verdicts)} replays, {verdicts.count(True)} gaps"


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize(("later", "gaps"), [(5, []), (6, ["lobby"])], ids=["newest-pruned", "one-more"])
async def test_a_redis_process_back_on_pub_sub_hears_of_a_gap_exactly_when_a_message_it_missed_is_gone(later, gaps):
    """While its pub/sub connection is cut, another process stores ``later`` messages in a room keeping 5: with
    5, the last message it delivered is the newest pruned and it missed nothing; with 6, one it missed is gone."""
    async with away_from_pub_sub(retain_per_room=5) as away:
        recorder, writer = away.recorder, away.writer
        delivered = [(await store(writer, "lobby", "ann", f"m{n}")).message for n in range(3)]
        await recorder.wait_for(3)
        await away.cut()
        missed = [(await store(writer, "lobby", "ann", f"missed {n}")).message for n in range(later)]
        away.restore()
        await recorder.wait_for(3 + 5, timeout=20)
        assert recorder.delivered == [*delivered, *missed[-5:]]
        assert recorder.gaps == gaps


class PausedSocket:
    """A socket in the room layer's eyes, whose first drain waits until the test lets it: what pruning does
    while a replay waits on its socket between two pages."""

    def __init__(self) -> None:
        self.frames: list[dict[str, object]] = []
        self.draining = asyncio.Event()
        self.release = asyncio.Event()

    def send_frames(self, data: bytes, frames: int = 1) -> None:
        before = len(self.frames)
        while data:  # unmasked text frames of short payloads (under 64 KiB)
            length, offset = data[1] & 0x7F, 2
            if length == 126:
                length, offset = int.from_bytes(data[2:4], "big"), 4
            self.frames.append(json.loads(data[offset : offset + length]))
            data = data[offset + length :]
        assert len(self.frames) - before == frames  # the count a socket's end reports

    def close_going_away(self) -> None:
        raise AssertionError("not shutting down")

    def send_room(self) -> int:
        return 1 << 20

    async def drained(self) -> bool:
        self.draining.set()
        await self.release.wait()
        return True

    def close_too_slow(self) -> None:
        raise AssertionError("it keeps up")


@pytest.mark.gen_test(timeout=60)
async def test_pruning_between_two_pages_of_a_replay_is_told_as_a_gap(make_backend):
    backend = await make_backend(retain_per_room=40)
    hub = RoomHub(
        backend,
        RoomsMetrics(),
        RatePolicy(1000, 1000, 1000, 1000, 10, blocks=AddressBlocks()),
        page_size=50,
    )
    first = [(await store(backend, ROOM, "ann", f"m{n}")).message for n in range(40)]
    socket = PausedSocket()
    await hub.join(socket, ROOM)
    going_live = asyncio.ensure_future(hub.go_live(socket, ROOM, first[0].id))
    await socket.draining.wait()  # the first page is out; the next is read once the socket has taken it
    assert [frame["id"] for frame in socket.frames] == [m.id for m in first[1 : 1 + FIRST_REPLAY_PAGE]]
    later = [(await store(backend, ROOM, "ann", f"m{n}")).message for n in range(40, 100)]
    next_unsent = first[1 + FIRST_REPLAY_PAGE]

    async def pruned_past_the_page() -> bool:
        oldest = (await backend.history(ROOM, 1, after="0")).messages[0]
        return backend.id_key(oldest.id) > backend.id_key(next_unsent.id)

    await eventually(pruned_past_the_page)
    socket.release.set()
    await going_live
    held = {m.id for m in (await backend.history(ROOM, 100, after="0")).messages}
    await post(hub, ROOM, "marker", "marker")
    await eventually(lambda: socket.frames[-1].get("message") == "marker")
    after_first_page = socket.frames[FIRST_REPLAY_PAGE:-1]
    assert after_first_page[0] == {"type": "gap"}, after_first_page[:2]
    # The pruner may go on while the replay reads: after the gap come the messages from one past the pruned
    # page to the newest, in order, every one still held once the replay is over among them.
    sent = [frame["id"] for frame in after_first_page[1:]]
    stored = [m.id for m in [*first, *later]]
    start = stored.index(sent[0])
    assert start > stored.index(next_unsent.id) and sent == stored[start:]
    assert held <= set(sent)
    hub.leave(socket, ROOM)
    await stop_hub(hub)

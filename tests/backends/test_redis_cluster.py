"""The Redis backend on a Redis Cluster: its URL, and faults under senders, each on a cluster of its own
(``tests.support.cluster``; the contract suite runs on a shared one as the ``redis-cluster`` factory).

Each test spreads rooms over the three shards; a writer backend stores into them while a listener
backend, another process's view, is subscribed to every room.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import redis.asyncio as redis
from redis.crc import key_slot

from backends import url_scheme
from backends.errors import BackendConfigError, BackendUnavailable
from backends.redis.backend import RedisBackend
from backends.redis.keys import RedisKeys
from backends.redis.options import DEFAULT_PREFIX, parse_cluster_url
from tests.support.cluster import SHARDS, RedisClusterSet
from tests.support.messages import new_message, store
from tests.support.metrics import backend_sample
from tests.support.recorder import Recorder
from tests.support.waiting import eventually


def test_cluster_url_names_its_nodes_and_options():
    target = parse_cluster_url("redis+cluster://:secret@h1:7000,h2:7001/?socket_timeout=0.5&replicas_to_wait=2")
    assert target.nodes == [("h1", 7000), ("h2", 7001)]
    assert target.connection_kwargs["password"] == "secret"
    assert target.connection_kwargs["socket_timeout"] == 0.5
    assert target.replicas_to_wait == 2
    assert parse_cluster_url("redis+cluster://h1").nodes == [("h1", 6379)]
    assert parse_cluster_url("redis+cluster://h1:7000/0").replicas_to_wait == 1
    assert url_scheme("redis+cluster://h1:7000") == "redis+cluster"


@pytest.mark.parametrize(
    "url",
    [
        "redis+cluster:///",
        "redis+cluster://h1:port/",
        "redis+cluster://h1:7000/3",
        "redis+cluster://h1:7000/?socket_timeout=soon",
        "redis+cluster://h1:7000/?replicas_to_wait=-1",
        "redis+cluster://h1:7000/?ping_interval=0",
        "redis+cluster://h1:7000/?key_prefix=a{b}",
        "redis+cluster://h1:7000/?no_such_option=1",
    ],
)
def test_bad_cluster_url_is_a_config_error_naming_backend_url(url):
    with pytest.raises(BackendConfigError, match=r"^backend\.url: "):
        RedisBackend(url)


class RoomSender:
    """Stores one message at a time into one room with fresh client ids; keeps what was acknowledged."""

    def __init__(self, backend: RedisBackend, room: str) -> None:
        self.backend = backend
        self.room = room
        self.acked: dict[str, str] = {}  # client id -> message id
        self.refused = 0

    async def run(self, stop: asyncio.Event) -> None:
        number = 0
        while not stop.is_set():
            client_id = f"{self.room}-{number}"
            number += 1
            try:
                result = await self.backend.store_soon(new_message(self.room, "ann", client_id, client_id))
            except BackendUnavailable:
                self.refused += 1
                await asyncio.sleep(0.05)
            else:
                self.acked[client_id] = result.message.id
                await asyncio.sleep(0.01)


async def rooms_on_each_shard(cluster: RedisClusterSet) -> dict[int, str]:
    """A room label per master port, the room's keys on that master."""
    keys = RedisKeys("rooms:")
    found: dict[int, str] = {}
    number = 0
    while len(found) < 3:
        label = f"room{number}"
        found.setdefault(await cluster.master_of(keys.stream(label)), label)
        number += 1
    return found


class Deployment:
    """A cluster of the test's own, a writer and a listener subscribed to a room on every shard."""

    def __init__(self, cluster: RedisClusterSet, writer: RedisBackend, listener: RedisBackend) -> None:
        self.cluster = cluster
        self.writer = writer
        self.listener = listener
        self.recorder = Recorder()
        self.rooms: dict[int, str] = {}
        self.senders: list[RoomSender] = []
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Future[None]] = []

    async def start_sending(self) -> None:
        self.rooms = await rooms_on_each_shard(self.cluster)
        self.listener.set_delivery_target(self.recorder)
        for room in self.rooms.values():
            await self.listener.subscribe(room)
        self.senders = [RoomSender(self.writer, room) for room in self.rooms.values()]
        self.tasks = [asyncio.ensure_future(sender.run(self.stop)) for sender in self.senders]

    def sender(self, room: str) -> RoomSender:
        return next(sender for sender in self.senders if sender.room == room)

    async def acked_grows(self, room: str, by: int, timeout: float = 30) -> None:
        sender = self.sender(room)
        mark = len(sender.acked)
        await eventually(lambda: len(sender.acked) >= mark + by, timeout=timeout, message=f"{room} stores again")

    async def stop_sending(self) -> None:
        self.stop.set()
        await asyncio.gather(*self.tasks)

    async def check_every_room(self) -> None:
        for sender in self.senders:
            await self.check_room(sender)

    async def check_room(self, sender: RoomSender) -> None:
        """Every acknowledged message in history once, in one order; the listener got all of history once
        and in that order (beyond it, only what a failover lost unacknowledged, told as a gap)."""
        history = (await self.writer.history(sender.room, limit=100000)).messages
        order = [message.id for message in history]
        assert order == sorted(order, key=self.writer.id_key)
        stored = collections.Counter(message.client_id for message in history)
        assert all(count == 1 for count in stored.values()), sender.room
        for client_id, message_id in sender.acked.items():
            assert stored[client_id] == 1 and message_id in order, (sender.room, client_id)

        def delivered() -> list[str]:
            return [message.id for message in self.recorder.delivered if message.room == sender.room]

        stored_ids = set(order)
        await eventually(
            lambda: [message_id for message_id in delivered() if message_id in stored_ids] == order,
            timeout=20,
            message=lambda: f"{sender.room}: delivered {len(delivered())} of {len(order)}",
        )
        lost = [message_id for message_id in delivered() if message_id not in stored_ids]
        assert not lost or sender.room in self.recorder.gaps, (sender.room, lost)
        assert not set(lost) & set(sender.acked.values())


@asynccontextmanager
async def deployment() -> AsyncIterator[Deployment]:
    cluster = await RedisClusterSet().start()
    writer = RedisBackend(cluster.url(ping_interval=0.5))
    listener = RedisBackend(cluster.url(ping_interval=0.5))
    here = Deployment(cluster, writer, listener)
    try:
        await writer.start()
        await listener.start()
        yield here
    finally:
        here.stop.set()
        for task in here.tasks:
            task.cancel()
        await asyncio.gather(*here.tasks, return_exceptions=True)
        await writer.close()
        await listener.close()
        cluster.remove()


def session_port(backend: RedisBackend, room: str) -> int | None:
    """The port of the master whose pub/sub session delivers ``room`` to ``backend``. The backend's own
    bookkeeping: it is asked too when no master answers, which no server could tell."""
    for name, session in backend._subscriber._sessions.items():  # type: ignore[union-attr]
        if session.has(room):
            return int(name.rpartition(":")[2])
    return None


@pytest.mark.gen_test(timeout=120)
async def test_cluster_failover_under_senders_loses_nothing_acknowledged_and_the_room_moves_to_the_new_master():
    async with deployment() as here:
        await here.start_sending()
        old_master, room = next(iter(here.rooms.items()))
        await here.acked_grows(room, 30)
        new_master = await here.cluster.failover(old_master)
        await eventually(lambda: session_port(here.listener, room) == new_master, timeout=20, message="room moved")
        for other in here.rooms.values():
            await here.acked_grows(other, 30)
        await here.stop_sending()
        await here.check_every_room()


@pytest.mark.gen_test(timeout=150)
async def test_a_killed_master_stops_only_its_rooms_and_after_its_failover_nothing_acknowledged_is_lost():
    """One replica per master, stores waiting for one replica (the default)."""
    async with deployment() as here:
        await here.start_sending()
        killed, room = next(iter(here.rooms.items()))
        others = [label for port, label in here.rooms.items() if port != killed]
        await here.acked_grows(room, 30)
        promoted = await here.cluster.replica_of(killed)
        here.cluster.processes[killed].kill()
        # While its replica is not yet promoted, the other shards' rooms store, the server stays healthy,
        # and the dead shard's room answers unavailable.
        refused = here.sender(room).refused
        for other in others:
            await here.acked_grows(other, 10, timeout=10)
        await here.writer.health()
        await eventually(lambda: here.sender(room).refused > refused, timeout=10, message="the dead shard refuses")
        await eventually(lambda: session_port(here.listener, room) == promoted, timeout=20, message="room moved")
        # The promoted replica has no replica of its own: its stores are not confirmed (WAIT) and answered
        # unavailable until the killed node is back, as its replica.
        here.cluster.restart(killed)
        await here.acked_grows(room, 30)
        await here.stop_sending()
        await here.check_every_room()
        assert backend_sample(here.listener, "rooms_redis_pubsub_sessions_lost_total") >= 1


@pytest.mark.gen_test(timeout=90)
async def test_masters_without_the_scripts_load_them_again_and_store():
    """What a replica promoted in a failover is: a master whose script cache is empty."""
    async with deployment() as here:
        rooms = await rooms_on_each_shard(here.cluster)
        for room in rooms.values():
            await store(here.writer, room, "ann", "before")
        for port in await here.cluster.master_ports():
            client = redis.Redis(port=port)
            try:
                await client.script_flush()
            finally:
                await client.aclose()
        for room in rooms.values():
            result = await store(here.writer, room, "ann", "after")
            assert [m.message for m in (await here.writer.history(room, 5)).messages] == ["before", "after"]
            assert not result.duplicate


@pytest.mark.gen_test(timeout=120)
async def test_a_subscribed_room_whose_slot_moves_is_delivered_once_and_in_order_from_its_new_shard():
    async with deployment() as here:
        await here.start_sending()
        source, room = next(iter(here.rooms.items()))
        target = next(port for port in here.rooms if port != source)
        await here.acked_grows(room, 20)
        slot = key_slot(RedisKeys(DEFAULT_PREFIX).stream(room).encode())
        await here.cluster.move_slot(slot, target)
        await eventually(lambda: session_port(here.listener, room) == target, timeout=20, message="room moved")
        await here.acked_grows(room, 20)
        await here.stop_sending()
        await here.check_every_room()


@pytest.mark.gen_test(timeout=90)
async def test_a_room_whose_shard_lost_its_stream_is_told_gap_alone_and_delivered_from_the_new_stream():
    """What a shard restarted without its data, or a replica promoted before it had a room, looks like to
    a subscriber: the room's stream and epoch are gone, and new messages make a new stream. Only that
    room is told ``gap``."""
    async with deployment() as here:
        rooms = await rooms_on_each_shard(here.cluster)
        recorder = Recorder()
        here.listener.set_delivery_target(recorder)
        for room in rooms.values():
            await here.listener.subscribe(room)
            await store(here.writer, room, "ann", "first")
        await eventually(lambda: len(recorder.delivered) == 3, message="the first messages delivered")
        port, lost_room = next(iter(rooms.items()))
        keys = RedisKeys(DEFAULT_PREFIX)
        client = redis.Redis(port=port)

        async def lose_the_stream_and_store(text: str) -> None:
            await client.delete(keys.stream(lost_room), keys.room_epoch(lost_room))
            await store(here.writer, lost_room, "ann", text)

        try:
            # Heard live: the message that made the new stream carries its epoch.
            await lose_the_stream_and_store("on a second stream")
            await eventually(lambda: recorder.gaps == [lost_room], timeout=20, message="gap told")
            # Read by the catch-up of the session that starts again (or, if it is back first, heard live).
            await client.client_kill_filter(_type="pubsub")
            await lose_the_stream_and_store("on a third stream")
            await eventually(lambda: recorder.gaps == [lost_room] * 2, timeout=20, message="gap told again")
        finally:
            await client.aclose()

        def texts() -> list[str]:
            return [m.message for m in recorder.delivered if m.room == lost_room]

        await eventually(lambda: texts() == ["first", "on a second stream", "on a third stream"], timeout=20)
        for room in rooms.values():
            if room != lost_room:
                after = (await store(here.writer, room, "ann", "second")).message
                await eventually(lambda after=after: after in recorder.delivered)
        assert recorder.gaps == [lost_room] * 2


@pytest.mark.gen_test(timeout=60)
async def test_the_backend_is_down_only_when_no_master_answers():
    async with deployment() as here:
        rooms = await rooms_on_each_shard(here.cluster)
        # Without replicas no master is failed over, which would otherwise race each store to a dead shard.
        for port in here.cluster.ports[SHARDS:]:
            here.cluster.processes[port].kill()
        for port, room in rooms.items():
            await here.writer.health()  # while any master answers
            here.cluster.processes[port].kill()
            with pytest.raises(BackendUnavailable):
                await store(here.writer, room, "ann", "to a dead shard")
        # No master left, and no failover without a majority of them.
        with pytest.raises(BackendUnavailable):
            await here.writer.health()
        # A room that cannot be subscribed is left subscribed nowhere.
        room = next(iter(rooms.values()))
        with pytest.raises(BackendUnavailable):
            await here.listener.subscribe(room)
        assert session_port(here.listener, room) is None

"""The Redis backend through Sentinel: its URL, and a failover under senders (the contract suite runs on
it as the ``redis-sentinel`` factory)."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable

import pytest
import redis.asyncio as redis

from backends import url_scheme
from backends.errors import BackendConfigError, BackendUnavailable
from backends.redis.backend import RedisBackend
from backends.redis.keys import RedisKeys
from backends.redis.options import DEFAULT_PREFIX, parse_sentinel_url
from tests.support.messages import new_message, store
from tests.support.metrics import backend_sample
from tests.support.recorder import Recorder
from tests.support.redis import PrivateRedis, shard_subscribers
from tests.support.sentinel import SentinelSet
from tests.support.waiting import eventually


def test_sentinel_url_names_sentinels_master_database_and_both_passwords():
    target = parse_sentinel_url(
        "redis+sentinel://:secret@s1:26379,s2:26380/mymaster/3?socket_timeout=0.5&sentinel_password=sp"
    )
    assert target.sentinels == [("s1", 26379), ("s2", 26380)]
    assert target.master_name == "mymaster"
    assert target.connection_kwargs["db"] == 3
    assert target.connection_kwargs["password"] == "secret"
    assert target.connection_kwargs["socket_timeout"] == 0.5
    assert target.sentinel_kwargs == {"socket_timeout": 0.5, "password": "sp"}
    assert target.replicas_to_wait == 1
    assert parse_sentinel_url("redis+sentinel://s1/m").sentinels == [("s1", 26379)]
    assert url_scheme("redis+sentinel://s1/m") == "redis+sentinel"


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel:///mymaster/0",
        "redis+sentinel://s1:26379/",
        "redis+sentinel://s1:26379/mymaster/zero",
        "redis+sentinel://s1:port/mymaster",
        "redis+sentinel://s1:26379/mymaster/0/extra",
        "redis+sentinel://s1:26379/mymaster?socket_timeout=soon",
        "redis+sentinel://s1:26379/mymaster?replicas_to_wait=-1",
        "redis+sentinel://s1:26379/mymaster?ping_interval=0",
        "redis+sentinel://s1:26379/mymaster?no_such_option=1",
    ],
)
def test_bad_sentinel_url_is_a_config_error_naming_backend_url(url):
    with pytest.raises(BackendConfigError, match=r"^backend\.url: "):
        RedisBackend(url)


async def listened_on(sentinels: SentinelSet, room: str) -> list[int]:
    """The ports of the set's servers where a client listens to ``room``'s channel."""
    channel = RedisKeys(DEFAULT_PREFIX).channel(room)
    return [port for port in sentinels.data_ports if await shard_subscribers(port, channel)]


class BackendSender:
    """Stores one message at a time with a fresh client id; keeps what was acknowledged and refused."""

    def __init__(self, backend: RedisBackend, name: str) -> None:
        self.backend = backend
        self.name = name
        self.acked: dict[str, str] = {}  # client id -> message id
        self.refused: list[str] = []

    async def run(self, stop: asyncio.Event) -> None:
        number = 0
        while not stop.is_set():
            client_id = f"{self.name}-{number}"
            number += 1
            try:
                result = await self.backend.store_soon(new_message("lobby", self.name, client_id, client_id))
            except BackendUnavailable:
                self.refused.append(client_id)
                await asyncio.sleep(0.05)
            else:
                self.acked[client_id] = result.message.id
                await asyncio.sleep(0.01)


async def check_history_and_delivery(writer: RedisBackend, senders: list[BackendSender], recorder: Recorder) -> None:
    """Every acknowledged message in history once, in one order; the listener got all of history once and
    in that order."""
    page = await writer.history("lobby", limit=100000)
    history = page.messages
    order = [message.id for message in history]
    stored_ids = set(order)
    assert order == sorted(order, key=writer.id_key)
    stored = collections.Counter(message.client_id for message in history)
    assert all(count == 1 for count in stored.values())
    for sender in senders:
        for client_id, message_id in sender.acked.items():
            assert stored[client_id] == 1, (sender.name, client_id)
            assert message_id in order
    await eventually(lambda: len(recorder.delivered) >= len(order), timeout=20)
    # Every stored message once and in order. A message the old master published in the instant of the
    # failover, before its replica had it, reached the listener and is not in history (it was never
    # acknowledged): then, and only then, the listener was told ``gap``.
    delivered = [message.id for message in recorder.delivered]
    assert [message_id for message_id in delivered if message_id in stored_ids] == order
    lost = [message.client_id for message in recorder.delivered if message.id not in stored_ids]
    assert not lost or recorder.gaps == ["lobby"], lost
    assert not set(lost) & {client_id for sender in senders for client_id in sender.acked}


@pytest.mark.gen_test(timeout=120)
async def test_sentinel_failover_under_senders_loses_nothing_acknowledged_and_the_subscriber_moves():
    sentinels = await SentinelSet().start()
    writer = RedisBackend(sentinels.url(ping_interval=0.5))
    listener = RedisBackend(sentinels.url(ping_interval=0.5))
    stop = asyncio.Event()
    tasks: list[asyncio.Future[None]] = []
    try:
        await writer.start()
        await listener.start()
        recorder = Recorder()
        listener.set_delivery_target(recorder)
        await listener.subscribe("lobby")
        old_master = await sentinels.master_port()
        assert await listened_on(sentinels, "lobby") == [old_master]

        senders = [BackendSender(writer, f"s{number}") for number in range(5)]
        tasks = [asyncio.ensure_future(sender.run(stop)) for sender in senders]

        def acked() -> int:
            return sum(len(sender.acked) for sender in senders)

        await eventually(lambda: acked() >= 50, timeout=20)
        new_master = await sentinels.failover()
        # The listener's connection to the old master stays open: it notices by asking Sentinel, and moves.

        async def moved() -> bool:
            return await listened_on(sentinels, "lobby") == [new_master]

        await eventually(moved, timeout=20, message="the subscriber on the new master alone")
        mark = acked()
        await eventually(lambda: acked() >= mark + 50, timeout=30, message=lambda: [s.refused for s in senders])
        stop.set()
        await asyncio.gather(*tasks)

        await check_history_and_delivery(writer, senders, recorder)
        assert backend_sample(listener, "rooms_redis_pubsub_sessions_lost_total") >= 1
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await writer.close()
        await listener.close()
        sentinels.remove()


@pytest.mark.gen_test(timeout=150)
async def test_sentinel_master_killed_under_senders_refuses_until_a_replica_is_back_and_loses_nothing():
    """With one replica and ``min-replicas-to-write 1`` (as the README advises), the promoted replica has no
    replica of its own: it answers (``/healthz`` passes) but refuses stores until the killed server is back
    as its replica."""
    sentinels = await SentinelSet().start()
    writer = RedisBackend(sentinels.url(ping_interval=0.5))
    listener = RedisBackend(sentinels.url(ping_interval=0.5))
    stop = asyncio.Event()
    tasks: list[asyncio.Future[None]] = []
    try:
        await writer.start()
        await listener.start()
        recorder = Recorder()
        listener.set_delivery_target(recorder)
        await listener.subscribe("lobby")
        senders = [BackendSender(writer, f"s{number}") for number in range(5)]
        tasks = [asyncio.ensure_future(sender.run(stop)) for sender in senders]

        def acked() -> int:
            return sum(len(sender.acked) for sender in senders)

        async def healthy() -> bool:
            try:
                await writer.health()
            except BackendUnavailable:
                return False
            return True

        await eventually(lambda: acked() >= 50, timeout=20)
        killed_task = asyncio.ensure_future(sentinels.kill_master())
        await eventually(lambda: healthy_not(healthy), timeout=10, message="/healthz failing while no master answers")
        killed = await killed_task
        await eventually(healthy, timeout=20, message="/healthz passing once the replica is master")
        mark = acked()
        # The markers are stores sent from now on: a sender has one store on its way at a time, so once each
        # sender has been refused twice more (the second store sent after the mark), every store it had on
        # its way has been answered.
        refused = [len(sender.refused) for sender in senders]
        await eventually(
            lambda: all(len(sender.refused) >= count + 2 for sender, count in zip(senders, refused, strict=True)),
            timeout=20,
            message=lambda: f"{acked() - mark} stores acknowledged since the mark",
        )
        assert acked() == mark  # the new master has no replica to confirm stores

        sentinels.restart(killed)
        await eventually(lambda: acked() >= mark + 50, timeout=60, message=lambda: [s.refused[-3:] for s in senders])
        stop.set()
        await asyncio.gather(*tasks)
        await check_history_and_delivery(writer, senders, recorder)
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await writer.close()
        await listener.close()
        sentinels.remove()


async def healthy_not(healthy: Callable[[], Awaitable[bool]]) -> bool:
    return not await healthy()


@pytest.mark.gen_test(timeout=60)
async def test_catch_up_on_a_redis_that_never_issued_the_last_delivered_id_tells_gap_and_goes_on():
    """What a subscriber finds on a new master that had not yet received the old one's newest messages: a
    stream whose last issued id is below the last id delivered. (Made here on one Redis by rewriting the
    stream, then dropping the subscriber's connection.)"""
    redis_server = await PrivateRedis().start()
    backend = RedisBackend(redis_server.url, ping_interval=0.5)
    client = redis.from_url(redis_server.url, decode_responses=True)
    try:
        await backend.start()
        recorder = Recorder()
        backend.set_delivery_target(recorder)
        await backend.subscribe("lobby")
        first = (await store(backend, "lobby", "ann", "kept", None)).message
        await store(backend, "lobby", "ann", "lost", None)
        await recorder.wait_for(2)
        stream = RedisKeys(DEFAULT_PREFIX).stream("lobby")
        await client.delete(stream)
        await client.xadd(stream, {"h": "ann", "m": "kept", "t": first.timestamp}, id=first.id)
        await client.client_kill_filter(_type="pubsub")

        await eventually(lambda: recorder.gaps == ["lobby"], timeout=20, message="gap told")
        after = (await store(backend, "lobby", "ann", "after", None)).message
        await recorder.wait_for(3)
        assert recorder.delivered[-1] == after
    finally:
        await backend.close()
        await client.aclose()
        redis_server.remove()

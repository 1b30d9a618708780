"""A Redis backend whose connections run through a TCP proxy, subscribed to a room beside a second process
that writes: for tests of what a process hears once it is back from a cut."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from backends.redis.backend import RedisBackend
from tests.support.factories.redis import RedisFactory
from tests.support.metrics import backend_sample
from tests.support.recorder import Recorder
from tests.support.redis import redis_address, require_redis, through_proxy
from tests.support.tcp_proxy import TCPProxy
from tests.support.waiting import eventually


@dataclass
class AwayProcess:
    backend: RedisBackend  # the process that goes away, its deliveries in ``recorder``
    recorder: Recorder
    writer: RedisBackend  # another process on the same keys, never cut
    proxy: TCPProxy

    async def cut(self) -> None:
        """Cut its connections and wait until it knows its pub/sub connection is down."""
        self.proxy.cut()
        await eventually(lambda: backend_sample(self.backend, "rooms_redis_pubsub_up") == 0, timeout=10)

    def restore(self) -> None:
        self.proxy.restore()


@asynccontextmanager
async def away_from_pub_sub(room: str = "lobby", **options: Any) -> AsyncIterator[AwayProcess]:
    """Both processes built with ``options`` (e.g. ``retain_per_room``), the one behind the proxy subscribed
    to ``room``; everything closed and the keys removed afterwards."""
    await require_redis()
    factory = RedisFactory()
    proxy = await TCPProxy(*redis_address()).start()
    away = RedisBackend(through_proxy(proxy.port), key_prefix=factory.prefix, ping_interval=0.2, **options)
    made = [away]
    try:
        recorder = Recorder()
        await away.start()
        away.set_delivery_target(recorder)
        await away.subscribe(room)
        writer = await factory.create(**options)
        made.append(writer)
        yield AwayProcess(away, recorder, writer, proxy)
    finally:
        for backend in made:
            await backend.close()
        await proxy.close()
        await factory.dispose()

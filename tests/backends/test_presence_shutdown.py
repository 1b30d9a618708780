"""A presence tick under way as the process shuts down: the hub's ``wait_closed`` returns once it has ended,
so no tick is left suspended in a call to Redis for the garbage collector to tear down after the loop."""

from __future__ import annotations

import pytest

from backends.redis.backend import RedisBackend
from rooms.protocol import Feature
from rooms.room.metrics import RoomsMetrics
from rooms.room.presence import LocalPresence
from tests.support.factories.redis import RedisFactory
from tests.support.redis import redis_address, require_redis, through_proxy
from tests.support.tcp_proxy import TCPProxy
from tests.support.waiting import eventually


class Listener:
    """A socket of the room, as presence sees one: it takes frames."""

    def send_frames(self, data: bytes, frames: int = 1) -> None:
        pass


@pytest.mark.gen_test(timeout=30)
async def test_a_tick_waiting_on_redis_has_ended_once_closing_is_waited_for():
    await require_redis()
    factory = RedisFactory()
    proxy = await TCPProxy(*redis_address()).start()
    backend = RedisBackend(through_proxy(proxy.port), key_prefix=factory.prefix)
    try:
        await backend.start()
        proxy.stall()  # Redis hears nothing more on the connections open now: the tick's call waits
        presence = LocalPresence(backend, RoomsMetrics())
        presence.join(Listener(), "lobby", frozenset({Feature.PRESENCE}))
        await eventually(lambda: presence._ticks)
        [tick] = presence._ticks
        assert not tick.done()  # its call waits on Redis
        presence.close()
        await presence.wait_closed()
        assert tick.cancelled() and not presence._ticks
    finally:
        await backend.close()
        await proxy.close()
        await factory.dispose()

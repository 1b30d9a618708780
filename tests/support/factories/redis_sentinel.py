"""The Redis backend through Sentinel, on one Sentinel set (``tests.support.sentinel``) started by the
first test that needs it and shared by the rest of the session (starting one takes seconds); it is
removed when the test process exits. Each factory has a key prefix of its own, as on the shared Redis.
"""

from __future__ import annotations

import atexit
from typing import Any

from backends.errors import BackendUnavailable
from backends.redis.backend import RedisBackend
from tests.support.factories import service_unreachable
from tests.support.factories.redis import delete_prefix, unique_prefix
from tests.support.sentinel import SentinelSet

_shared: SentinelSet | None = None


async def shared_sentinel_set() -> SentinelSet:
    global _shared
    if _shared is None:
        sentinels = SentinelSet()
        atexit.register(sentinels.remove)
        _shared = await sentinels.start()
    return _shared


class RedisSentinelFactory:
    def __init__(self) -> None:
        self.prefix = unique_prefix()
        self.sentinels: SentinelSet | None = None

    async def create(self, **options: Any) -> RedisBackend:
        self.sentinels = await shared_sentinel_set()
        backend = RedisBackend(self.sentinels.url(), key_prefix=self.prefix, **options)
        try:
            await backend.start()
        except BackendUnavailable as exc:
            await backend.close()
            service_unreachable(f"Redis through Sentinel at {self.sentinels.url()}", str(exc))
        return backend

    async def dispose(self) -> None:
        if self.sentinels is not None:
            await delete_prefix(f"redis://127.0.0.1:{await self.sentinels.master_port()}/0", self.prefix)


FACTORIES = {"redis-sentinel": RedisSentinelFactory}

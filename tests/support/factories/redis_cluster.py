"""The Redis backend on a Redis Cluster (``tests.support.cluster``): six redis-server processes started
by the first test that needs them and shared by the rest of the session (starting them takes seconds);
they are removed when the test process exits. Each factory has a key prefix of its own, as on the
shared Redis.
"""

from __future__ import annotations

import atexit
from typing import Any

from backends.errors import BackendUnavailable
from backends.redis.backend import RedisBackend
from tests.support.cluster import RedisClusterSet
from tests.support.factories import service_unreachable
from tests.support.factories.redis import unique_prefix

_shared: RedisClusterSet | None = None


async def shared_cluster() -> RedisClusterSet:
    global _shared
    if _shared is None:
        cluster = RedisClusterSet()
        atexit.register(cluster.remove)
        _shared = await cluster.start()
    return _shared


class RedisClusterFactory:
    def __init__(self) -> None:
        self.prefix = unique_prefix()
        self.cluster: RedisClusterSet | None = None

    async def create(self, **options: Any) -> RedisBackend:
        self.cluster = await shared_cluster()
        backend = RedisBackend(self.cluster.url(), key_prefix=self.prefix, **options)
        try:
            await backend.start()
        except BackendUnavailable as exc:
            await backend.close()
            service_unreachable(f"the Redis Cluster at {self.cluster.url()}", str(exc))
        return backend

    async def dispose(self) -> None:
        if self.cluster is not None:
            await self.cluster.delete_keys(self.prefix)


FACTORIES = {"redis-cluster": RedisClusterFactory}

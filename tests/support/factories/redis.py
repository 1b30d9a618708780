"""The Redis backend on the shared Redis (127.0.0.1:6379, or ``ROOMS_TEST_REDIS_URL``).

Each factory gets a key prefix of its own (keys and pub/sub channels), so tests never see each other's
rooms; ``dispose`` deletes every key under it.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import redis.asyncio as redis

from backends.errors import BackendUnavailable
from backends.redis.backend import RedisBackend
from tests.support.factories import service_unreachable

REDIS_URL = os.environ.get("ROOMS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def unique_prefix() -> str:
    return f"rooms-test-{uuid.uuid4().hex[:12]}:"


async def delete_prefix(url: str, prefix: str) -> None:
    """Remove every key under ``prefix`` (the prefix holds no glob characters)."""
    client = redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        for start in range(0, len(keys), 500):
            await client.delete(*keys[start : start + 500])
    finally:
        await client.aclose()


class RedisFactory:
    def __init__(self) -> None:
        self.prefix = unique_prefix()

    async def create(self, **options: Any) -> RedisBackend:
        backend = RedisBackend(REDIS_URL, key_prefix=self.prefix, **options)
        try:
            await backend.start()
        except BackendUnavailable as exc:
            await backend.close()
            service_unreachable(f"Redis at {REDIS_URL}", str(exc))
        return backend

    async def dispose(self) -> None:
        await delete_prefix(REDIS_URL, self.prefix)


FACTORIES = {"redis": RedisFactory}

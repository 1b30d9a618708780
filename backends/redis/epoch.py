"""Noticing that Redis lost its data (a restart without persistence, a FLUSHALL): the epoch token, a key
each pub/sub session reads, which vanishes with the data. A session that finds another token than the
one it read before tells the hub ``gap`` for every room it delivers.

On a Redis Cluster no one key stands for every shard's data; there each room's epoch tells instead
(``RedisKeys.room_epoch``, read with the stream at every catch-up).
"""

from __future__ import annotations

import secrets
from typing import Protocol

from redis.asyncio import Redis


class StoreEpoch(Protocol):
    async def renewed(self) -> bool:
        """Whether the store lost its data since the last call (False on the first)."""

    async def vanished(self) -> bool:
        """Whether the store lost its data since ``renewed`` was last called."""


class EpochToken:
    def __init__(self, commands: Redis, key: str) -> None:
        self._commands = commands
        self._key = key
        self._token: str | None = None

    async def renewed(self) -> bool:
        """Read the token (setting one if there is none): whether it differs from the one read before."""
        fresh = secrets.token_hex(8)
        earlier = await self._commands.set(self._key, fresh, nx=True, get=True)
        current = earlier if isinstance(earlier, str) else fresh
        renewed = self._token is not None and current != self._token
        self._token = current
        return renewed

    async def vanished(self) -> bool:
        """Whether the token read last is no longer there (checked now and then, between reads)."""
        return await self._commands.get(self._key) != self._token


class RoomEpochsOnly:
    """No token for the whole store: each room's epoch tells (a Redis Cluster)."""

    async def renewed(self) -> bool:
        return False

    async def vanished(self) -> bool:
        return False

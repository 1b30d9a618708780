"""One Redis server: every room's keys and channel on it, one pub/sub session for the process."""

from __future__ import annotations

from typing import Any, Self

from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import RedisError

from backends.errors import BackendUnavailable
from backends.redis.connection import CONNECTION_DEFAULTS, MAX_CONNECTIONS, POOL_TIMEOUT_SECONDS, command_retry
from backends.redis.epoch import EpochToken, StoreEpoch
from backends.redis.keys import RedisKeys
from backends.redis.migration import migrate_layout
from backends.redis.scripts import Run, run_scripts

PLACE = "redis"  # the one pub/sub session's name


class SingleServer:
    kind = "redis"

    def __init__(self, commands: ConnectionPool, pubsub: ConnectionPool, key_prefix: str, replicas: int) -> None:
        """``commands`` and ``pubsub`` make the connections of the server's (or master's) commands and
        of the pub/sub session; ``replicas``: how many must confirm a store (0: none)."""
        self._pubsub = pubsub
        self._replicas = replicas
        # redis-py hands unknown query options to the connection class; fail here, not at first use.
        pubsub.make_connection()  # type: ignore[no-untyped-call]
        self.commands = Redis(connection_pool=commands)
        self.keys = RedisKeys(key_prefix, int(commands.connection_kwargs.get("db", 0)))

    @classmethod
    def from_url(cls, url: str, key_prefix: str) -> Self:
        commands = BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=POOL_TIMEOUT_SECONDS,
            retry=command_retry(),
            **CONNECTION_DEFAULTS,
        )
        # Only builds the pub/sub connection; the subscriber reconnects itself (no retry here).
        pubsub = ConnectionPool.from_url(url, protocol=3, **CONNECTION_DEFAULTS)
        return cls(commands, pubsub, key_prefix, replicas=0)

    async def start(self) -> None:
        pass

    async def upgrade_layout(self) -> None:
        await migrate_layout(self.commands, self.keys)

    async def run_scripts(self, runs: list[Run], wait_for_replicas: bool = False) -> list[Any]:
        return await run_scripts(self.commands, runs, self._replicas if wait_for_replicas else 0)

    def places(self) -> list[str]:
        return [PLACE]

    def place_of(self, channel: str) -> str | None:
        return PLACE

    def pubsub_connection(self, place: str) -> AbstractConnection:
        return self._pubsub.make_connection()  # type: ignore[no-untyped-call,no-any-return]

    def subscribe_groups(self, channels: list[str]) -> list[list[str]]:
        return [channels] if channels else []

    async def moved(self, conn: AbstractConnection) -> str | None:
        return None

    def store_epoch(self) -> StoreEpoch:
        return EpochToken(self.commands, self.keys.epoch)

    async def refresh(self) -> None:
        pass

    async def health(self) -> None:
        try:
            await self.commands.ping()
        except (RedisError, OSError) as exc:
            raise BackendUnavailable(f"Redis does not answer: {exc}") from None

    async def close(self) -> None:
        await self.commands.aclose(close_connection_pool=True)
        await self._pubsub.disconnect()

"""Redis behind Sentinel: one server at a time, the master the sentinels name (``SentinelMaster``, a
``SingleServer`` whose pools follow the master), and the check that the pub/sub connection still talks
to it.

Commands go through ``Sentinel.master_for``'s pool, which asks Sentinel for the master's address
whenever it opens a connection; after a failover the old connections fail (``READONLY``, closed) and
new ones reach the new master. The pub/sub connection is made by the same kind of pool, so each session
of the subscriber asks Sentinel too. A subscriber on a demoted master is not told: the server keeps
the connection open and silent for seconds. So every ping interval the subscriber compares its
connection's address with the master Sentinel reports (``MasterCheck``), and ends its session when they
differ; the next session reaches the new master and catches up from the stream.

Replication is asynchronous: a store the old master ran in the moments before it was demoted is lost
with it. So a batch of stores is acknowledged only once ``replicas_to_wait`` replicas (default 1) have
it (``WAIT``); a batch that no replica confirms in time is answered ``unavailable`` (its senders resend;
the client id finds the message if it did survive).
"""

from __future__ import annotations

from redis.asyncio.connection import AbstractConnection, BlockingConnectionPool
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

from backends.redis.connection import CONNECTION_DEFAULTS, MAX_CONNECTIONS, POOL_TIMEOUT_SECONDS, command_retry
from backends.redis.options import SentinelTarget
from backends.redis.single import SingleServer


class BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """A pool of the master's connections that waits for a free one instead of failing."""


class SentinelMaster(SingleServer):
    """The master of a Sentinel set: the command pool (waiting for a free connection, like the
    single-Redis pool) and the pool that makes the pub/sub connection both ask Sentinel where it is."""

    kind = "redis-sentinel"

    def __init__(self, target: SentinelTarget, key_prefix: str) -> None:
        settings = {**CONNECTION_DEFAULTS, **target.connection_kwargs}
        self._sentinel = Sentinel(target.sentinels, sentinel_kwargs=target.sentinel_kwargs)  # type: ignore[no-untyped-call]
        commands = BlockingSentinelPool(  # type: ignore[no-untyped-call]
            target.master_name,
            self._sentinel,
            max_connections=MAX_CONNECTIONS,
            timeout=POOL_TIMEOUT_SECONDS,
            retry=command_retry(),
            **settings,
        )
        pubsub = SentinelConnectionPool(target.master_name, self._sentinel, protocol=3, **settings)  # type: ignore[no-untyped-call]
        super().__init__(commands, pubsub, key_prefix, target.replicas_to_wait)
        self._master_check = MasterCheck(commands)

    async def moved(self, conn: AbstractConnection) -> str | None:
        return await self._master_check.moved(conn)

    async def close(self) -> None:
        await super().close()
        await self._sentinel.aclose()


class MasterCheck:
    """Whether a connection still reaches the master Sentinel reports; asking also moves the command
    pool to a new master at once (it would otherwise stay on a demoted one, which takes reads and
    refuses writes, until the connection fails)."""

    def __init__(self, commands: SentinelConnectionPool) -> None:
        self._commands = commands

    async def moved(self, conn: AbstractConnection) -> str | None:
        """Why ``conn`` no longer reaches the master, or None while it does."""
        known = self._commands.master_address
        # Closes the idle connections if the master moved.
        host, port = await self._commands.get_master_address()  # type: ignore[no-untyped-call]
        if known is not None and known != (host, port):
            # The connections in use are on the old master too. A store in flight there fails, and is
            # retried on the new one (its attempt token finds it if it was stored after all).
            await self._commands.disconnect(inuse_connections=True)
        here = (getattr(conn, "host", None), getattr(conn, "port", None))
        if here != (host, port):
            return f"the master moved from {here[0]}:{here[1]} to {host}:{port}"
        return None

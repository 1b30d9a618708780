"""Redis behind Sentinel: the URL, the pools that follow the master, and the check that the pub/sub
connection still talks to it.

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

from typing import Any

from redis.asyncio.connection import AbstractConnection, BlockingConnectionPool, ConnectionPool
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

from backends.redis.options import SentinelTarget


class BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """A pool of the master's connections that waits for a free one instead of failing."""


class SentinelPools:
    """What the backend reaches Redis with on Sentinel: the command pool (waiting for a free connection,
    like the single-Redis pool), the pool that makes the pub/sub connection (RESP3, see
    ``StreamSubscriber``) and the check of that connection's address."""

    def __init__(self, target: SentinelTarget, settings: dict[str, Any], max_connections: int, retry: Retry) -> None:
        self.sentinel = Sentinel(target.sentinels, sentinel_kwargs=target.sentinel_kwargs)  # type: ignore[no-untyped-call]
        commands = BlockingSentinelPool(  # type: ignore[no-untyped-call]
            target.master_name, self.sentinel, max_connections=max_connections, timeout=5, retry=retry, **settings
        )
        self.pubsub: ConnectionPool = SentinelConnectionPool(  # type: ignore[no-untyped-call]
            target.master_name, self.sentinel, protocol=3, **settings
        )
        self.commands: ConnectionPool = commands
        self.master_check = MasterCheck(commands)


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

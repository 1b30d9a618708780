"""Redis behind Sentinel: the URL, the pools that follow the master, and the check that the pub/sub
connection still talks to it.

URL: ``redis+sentinel://[[user]:password@]s1:26379,s2:26379/<master-name>/<db>?<options>``. The
options are those of the single-Redis URL: ours (``backends.redis.options``) and redis-py's socket
options. As in redis-py's ``Sentinel``, the password in the URL is the Redis servers' (master and
replicas), and the sentinels are reached with the socket options only; ``sentinel_password`` (and
``sentinel_username``) give the sentinels' own credentials when they have ``requirepass``.

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

from dataclasses import dataclass
from typing import Any

from redis.asyncio.connection import AbstractConnection, BlockingConnectionPool, ConnectionPool
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

from backends.errors import BackendConfigError
from backends.redis.options import parse_hosts_url, whole_number

SCHEME = "redis+sentinel"
DEFAULT_SENTINEL_PORT = 26379
SENTINEL_OPTIONS = ("sentinel_password", "sentinel_username", "replicas_to_wait")
DEFAULT_REPLICAS_TO_WAIT = 1


@dataclass(frozen=True, slots=True)
class SentinelTarget:
    sentinels: list[tuple[str, int]]
    master_name: str
    connection_kwargs: dict[str, Any]  # for the master's connections (db, password, socket options)
    sentinel_kwargs: dict[str, Any]  # for the sentinels' connections
    replicas_to_wait: int


def is_sentinel_url(url: str) -> bool:
    return url.lower().startswith(f"{SCHEME}://")


def parse_sentinel_url(url: str) -> SentinelTarget:
    """The sentinels, master name and connection options of a ``redis+sentinel://`` URL (without our
    own options, which ``parse_redis_url`` took off), or ``BackendConfigError`` naming ``backend.url``."""
    parts = parse_hosts_url(url, SENTINEL_OPTIONS, DEFAULT_SENTINEL_PORT, "sentinel")
    names = parts.path
    if not names or len(names) > 2:
        raise BackendConfigError(f"backend.url: {SCHEME}:// needs /<master-name>[/<db>] after the sentinels")
    db = names[1] if len(names) == 2 else "0"
    if not db.isdigit():
        raise BackendConfigError(f"backend.url: the database must be a number, got {db!r}")
    kwargs = {**parts.connection_kwargs, "db": int(db)}
    ours = parts.options
    sentinel_kwargs = {name: value for name, value in kwargs.items() if name.startswith("socket_")}
    if "sentinel_password" in ours:
        sentinel_kwargs["password"] = ours["sentinel_password"]
    if "sentinel_username" in ours:
        sentinel_kwargs["username"] = ours["sentinel_username"]
    wait = whole_number("replicas_to_wait", ours.get("replicas_to_wait", str(DEFAULT_REPLICAS_TO_WAIT)))
    return SentinelTarget(parts.hosts, names[0], kwargs, sentinel_kwargs, wait)


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

"""Redis Cluster: the shards' clients, a pub/sub session per master, and where each room lives.

Every key and channel of a room carries its label as a hash tag (``backends.redis.keys.RedisKeys``),
so a room lives on one shard: its scripts run there, and its channel is a shard channel there
(``SSUBSCRIBE``). Commands go through redis-py's ``RedisCluster``, which follows the slots. The store
scripts go instead through one plain client per shard's master (``ClusterDeployment.run_scripts``), so
that each shard's batch is followed by ``WAIT`` on the same connection: a store is acknowledged only
once a replica has it, as a failover would otherwise lose it. A batch that meets a topology change
(``MOVED``, ``ASK``, ``TRYAGAIN``, a master gone) reads the slots again and sends what failed again;
the attempt tokens store nothing twice.

redis-py's ``ClusterPubSub`` resubscribes silently after a topology change, and messages published
meanwhile are lost. So the subscriber (``backends.redis.subscriber``) runs one session per master, each
with the rooms whose slot that master serves, and moves a room when its slot moves: when Redis
unsubscribes it (an unasked ``sunsubscribe``), when a session is lost (a master died), and when a
reading of the slots, every ping interval, shows another owner (a failover or a slot moved while the
connection stayed open). The room's session at the new owner subscribes and catches up from the stream,
so what was published in between is delivered once and in order. A shard that lost its data is noticed
per room, by the room's epoch (``RedisKeys.room_epoch``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection, Connection
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ConnectionError,
    RedisClusterException,
    RedisError,
    TimeoutError,
    TryAgainError,
)

from backends.errors import BackendUnavailable
from backends.redis.connection import CONNECTION_DEFAULTS, MAX_CONNECTIONS, POOL_TIMEOUT_SECONDS, command_retry
from backends.redis.epoch import RoomEpochsOnly, StoreEpoch
from backends.redis.keys import RedisKeys
from backends.redis.options import ClusterTarget
from backends.redis.scripts import Run, run_scripts

log = logging.getLogger(__name__)

# How often a batch meeting a topology change is sent again, and the pause before each time.
STORE_ATTEMPTS = 4
RETRY_PAUSE_SECONDS = 0.3
# What a topology change looks like to a command (a redirect, a master gone or not yet promoted).
_MOVING = (AskError, TryAgainError, ClusterDownError, ConnectionError, TimeoutError, OSError)


class ClusterDeployment:
    """The cluster as the backend reaches it: ``RedisCluster`` for commands, one plain client per master
    for the scripts, and a pub/sub session per master."""

    kind = "redis-cluster"

    def __init__(self, target: ClusterTarget, key_prefix: str) -> None:
        self._settings = {**CONNECTION_DEFAULTS, **target.connection_kwargs}
        self._retry = command_retry()
        self._replicas = target.replicas_to_wait
        # redis-py hands unknown query options to the connection class; fail here, not at first use.
        Connection(protocol=3, **self._settings)
        self.cluster = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
            require_full_coverage=False,  # the shards that answer keep serving their rooms
            max_connections=MAX_CONNECTIONS,
            **self._settings,
        )
        # The backend's modules use the command API that a cluster client shares with a plain one.
        self.commands = cast(Redis, self.cluster)
        self.keys = RedisKeys(key_prefix)  # a cluster has database 0 only
        self._masters: dict[str, Redis] = {}

    async def start(self) -> None:
        await self.cluster.initialize()

    async def upgrade_layout(self) -> None:
        """Nothing to do: no cluster ever held the earlier layout."""

    async def close(self) -> None:
        for client in self._masters.values():
            await client.aclose(close_connection_pool=True)
        await self.cluster.aclose()

    async def refresh(self) -> None:
        """Read the slots again (from any node that answers)."""
        await self.cluster.nodes_manager.initialize()

    def places(self) -> list[str]:
        return [node.name for node in self.cluster.get_primaries()]

    def place_of(self, channel: str) -> str | None:
        return self.shard_of(channel)

    def subscribe_groups(self, channels: list[str]) -> list[list[str]]:
        return [[channel] for channel in channels]  # a cluster refuses one SSUBSCRIBE for several slots

    async def moved(self, conn: AbstractConnection) -> str | None:
        return None  # a slot that moves takes its rooms to another session (``backends.redis.subscriber``)

    def store_epoch(self) -> StoreEpoch:
        return RoomEpochsOnly()

    async def health(self) -> None:
        # A shard down takes only its rooms (they answer unavailable); the server is down with all.
        if not await self.answering():
            raise BackendUnavailable("no master of the Redis Cluster answers")

    def shard_of(self, key: str) -> str | None:
        """The master serving ``key``'s slot, as last read; None while no node serves it."""
        try:
            node = self.cluster.get_node_from_key(key)
        except RedisClusterException:
            return None
        return None if node is None else str(node.name)

    def master(self, name: str) -> Redis:
        client = self._masters.get(name)
        if client is None:
            host, _, port = name.rpartition(":")
            pool = BlockingConnectionPool(
                host=host,
                port=int(port),
                max_connections=MAX_CONNECTIONS,
                timeout=POOL_TIMEOUT_SECONDS,
                **self._settings,
            )
            client = self._masters[name] = Redis(connection_pool=pool, retry=self._retry)
        return client

    def pubsub_connection(self, place: str) -> AbstractConnection:
        host, _, port = place.rpartition(":")
        return Connection(host=host, port=int(port), protocol=3, **self._settings)

    async def answering(self) -> list[str]:
        """The masters that answer a PING now."""

        async def answers(name: str) -> bool:
            try:
                return bool(await self.master(name).ping())
            except (RedisError, OSError):
                return False

        names = self.places()
        return [name for name, ok in zip(names, await asyncio.gather(*map(answers, names)), strict=True) if ok]

    async def run_scripts(self, runs: list[Run], wait_for_replicas: bool = False) -> list[Any]:
        """``run_scripts`` on the masters of the runs' first keys, each shard's runs in one pipeline
        (followed by WAIT for the replicas); runs that meet a topology change go again once the slots are
        read again. Each reply in its run's place."""
        replicas = self._replicas if wait_for_replicas else 0
        replies: list[Any] = [None] * len(runs)
        pending = list(range(len(runs)))
        for attempt in range(STORE_ATTEMPTS):
            by_shard: dict[str | None, list[int]] = {}
            for index in pending:
                by_shard.setdefault(self.shard_of(runs[index][1][0]), []).append(index)
            results = await asyncio.gather(
                *(self._run_on(shard, [runs[i] for i in indexes], replicas) for shard, indexes in by_shard.items())
            )
            pending = []
            for indexes, shard_replies in zip(by_shard.values(), results, strict=True):
                for index, reply in zip(indexes, shard_replies, strict=True):
                    replies[index] = reply
                    if isinstance(reply, _MOVING):
                        pending.append(index)
            if not pending or attempt == STORE_ATTEMPTS - 1:
                break
            await asyncio.sleep(RETRY_PAUSE_SECONDS * (attempt + 1))
            try:
                await self.refresh()
            except (RedisError, RedisClusterException, OSError) as exc:
                log.debug("cluster slots not read again: %s", exc)
        return replies

    async def _run_on(self, shard: str | None, runs: list[Run], replicas: int) -> list[Any]:
        if shard is None:
            return [ClusterDownError("no master serves this room's slot")] * len(runs)
        try:
            return await run_scripts(self.master(shard), runs, replicas)
        except (RedisError, OSError) as exc:
            return [exc] * len(runs)

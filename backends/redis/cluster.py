"""Redis Cluster: the URL, the shards' clients, and one pub/sub session per shard.

Every key and channel of a room carries its label as a hash tag (``backends.redis.keys.RedisKeys``),
so a room lives on one shard: its scripts run there, and its channel is a shard channel there
(``SSUBSCRIBE``). Commands go through redis-py's ``RedisCluster``, which follows the slots. The store
scripts go instead through one plain client per shard's master (``ClusterShards.run_scripts``), so
that each shard's batch is followed by ``WAIT`` on the same connection: a store is acknowledged only
once a replica has it, as a failover would otherwise lose it. A batch that meets a topology change
(``MOVED``, ``ASK``, ``TRYAGAIN``, a master gone) reads the slots again and sends what failed again;
the attempt tokens store nothing twice.

redis-py's ``ClusterPubSub`` resubscribes silently after a topology change, and messages published
meanwhile are lost. So ``ClusterSubscriber`` runs one ``StreamSubscriber`` session per master, each
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
from collections.abc import Callable
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection, Connection
from redis.asyncio.retry import Retry
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ConnectionError,
    RedisClusterException,
    RedisError,
    TimeoutError,
    TryAgainError,
)

from backends.base import DeliveryTarget
from backends.errors import BackendUnavailable
from backends.redis.channel import PresenceChange, Signal
from backends.redis.keys import RedisKeys, StreamId
from backends.redis.options import ClusterTarget
from backends.redis.scripts import Run, run_scripts
from backends.redis.session import ShardHooks, StreamSubscriber, SubscriberStats, cancel_and_wait

log = logging.getLogger(__name__)

# How often a batch meeting a topology change is sent again, and the pause before each time.
STORE_ATTEMPTS = 4
RETRY_PAUSE_SECONDS = 0.3
# What a topology change looks like to a command (a redirect, a master gone or not yet promoted).
_MOVING = (AskError, TryAgainError, ClusterDownError, ConnectionError, TimeoutError, OSError)


class ClusterShards:
    """The cluster as the backend reaches it: ``RedisCluster`` for commands, one plain client per master
    for the store scripts, and a pub/sub connection per master for the subscriber."""

    def __init__(self, target: ClusterTarget, settings: dict[str, Any], max_connections: int, retry: Retry) -> None:
        self._settings = {**settings, **target.connection_kwargs}
        self._max_connections = max_connections
        self._retry = retry
        self.replicas_to_wait = target.replicas_to_wait
        self.cluster = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
            require_full_coverage=False,  # the shards that answer keep serving their rooms
            max_connections=max_connections,
            **self._settings,
        )
        self._masters: dict[str, Redis] = {}

    async def start(self) -> None:
        await self.cluster.initialize()

    async def close(self) -> None:
        for client in self._masters.values():
            await client.aclose(close_connection_pool=True)
        await self.cluster.aclose()

    async def refresh(self) -> None:
        """Read the slots again (from any node that answers)."""
        await self.cluster.nodes_manager.initialize()

    def masters(self) -> list[str]:
        return [node.name for node in self.cluster.get_primaries()]

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
                host=host, port=int(port), max_connections=self._max_connections, timeout=5, **self._settings
            )
            client = self._masters[name] = Redis(connection_pool=pool, retry=self._retry)
        return client

    def pubsub_connection(self, name: str) -> AbstractConnection:
        host, _, port = name.rpartition(":")
        # RESP3, as on one Redis (see StreamSubscriber.subscribe).
        return Connection(host=host, port=int(port), protocol=3, **self._settings)

    async def answering(self) -> list[str]:
        """The masters that answer a PING now."""

        async def answers(name: str) -> bool:
            try:
                return bool(await self.master(name).ping())
            except (RedisError, OSError):
                return False

        names = self.masters()
        return [name for name, ok in zip(names, await asyncio.gather(*map(answers, names)), strict=True) if ok]

    async def run_scripts(self, runs: list[Run], replicas: int) -> list[Any]:
        """``run_scripts`` on the masters of the runs' first keys, each shard's runs in one pipeline
        (followed by WAIT for ``replicas``); runs that meet a topology change go again once the slots are
        read again. Each reply in its run's place."""
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


class ClusterSubscriber:
    """``StreamSubscriber``'s interface over one session per master (see the module's docstring)."""

    def __init__(
        self,
        shards: ClusterShards,
        keys: RedisKeys,
        target: Callable[[], DeliveryTarget | None],
        ping_interval: float,
        on_signal: Callable[[str, Signal | PresenceChange], None],
    ) -> None:
        self._shards = shards
        self._keys = keys
        self._target = target
        self._ping_interval = ping_interval
        self._on_signal = on_signal
        self.stats = SubscriberStats()
        self._sessions: dict[str, StreamSubscriber] = {}
        self._dropped: dict[str, int] = {}  # rooms Redis unsubscribed -> times found still at the same shard
        self._rehoming: asyncio.Task[None] | None = None
        self._again = False
        self._watcher: asyncio.Task[None] | None = None
        self._moderator: StreamSubscriber | None = None  # the session listening to the moderation channel
        self._handover: asyncio.Future[None] | None = None

    async def start(self, timeout: float) -> None:
        """Begin a session per master; raise ``BackendUnavailable`` if none listens within ``timeout``."""
        sessions = [self._session(name) for name in self._shards.masters()]
        if not sessions:
            raise BackendUnavailable("no master of the Redis Cluster is known")
        self._moderator = sessions[0]
        await self._moderator.hear_moderation()
        heard = [asyncio.ensure_future(session.moderation_heard()) for session in sessions]
        try:
            done, _ = await asyncio.wait(heard, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in heard:
                waiter.cancel()
        if not done:
            raise BackendUnavailable(self.down_reason)
        self._watcher = asyncio.create_task(self._watch(), name="redis-cluster-slots")

    async def close(self) -> None:
        for task in (self._watcher, self._rehoming):
            if task is not None:
                await cancel_and_wait(task)
        for session in self._sessions.values():
            await session.close()

    @property
    def is_live(self) -> bool:
        return any(session.is_live for session in self._sessions.values())

    @property
    def down_reason(self) -> str:
        reasons = [f"{name}: {session.down_reason}" for name, session in self._sessions.items()]
        return "; ".join(reasons) or "no master of the cluster is known"

    async def subscribe(self, room: str, timeout: float) -> StreamId:
        session = self._holder(room)
        if session is None:
            shard = self._shards.shard_of(self._keys.channel(room))
            if shard is None:
                raise BackendUnavailable(f"could not subscribe to room {room}: no master serves its slot")
            session = self._session(shard)
        try:
            return await session.subscribe(room, timeout)
        except BackendUnavailable:
            # The room may have moved to another session meanwhile: not subscribed means nowhere.
            holder = self._holder(room)
            if holder is not None:
                await holder.unsubscribe(room)
            raise

    async def unsubscribe(self, room: str) -> None:
        self._dropped.pop(room, None)
        session = self._holder(room)
        if session is not None:
            await session.unsubscribe(room)

    async def wait_delivered(self, room: str, key: StreamId, timeout: float) -> None:
        session = self._holder(room)
        if session is not None:
            await session.wait_delivered(room, key, timeout)

    def _holder(self, room: str) -> StreamSubscriber | None:
        return next((session for session in self._sessions.values() if session.has(room)), None)

    def _session(self, shard: str) -> StreamSubscriber:
        session = self._sessions.get(shard)
        if session is None:
            hooks = ShardHooks(self.stats, lambda: self._session_lost(shard), self._room_dropped)
            session = StreamSubscriber(
                self._shards.cluster,  # type: ignore[arg-type]  # the catch-up's reads follow the slots
                lambda: self._shards.pubsub_connection(shard),
                self._keys,
                self._target,
                self._ping_interval,
                self._on_signal,
                shard=hooks,
            )
            self._sessions[shard] = session
            session.begin()
        return session

    # -- rooms moving between shards ---------------------------------------------------------------

    def _session_lost(self, shard: str) -> None:
        if self._moderator is not None and self._moderator is self._sessions.get(shard):
            self._moderation_moves(away_from=self._moderator)
        self._topology_changed()

    def _moderation_moves(self, away_from: StreamSubscriber) -> None:
        """Let another shard's session listen to the moderation channel (a live one if there is)."""
        others = [session for session in self._sessions.values() if session is not away_from]
        if not others:
            return
        successor = next((session for session in others if session.is_live), others[0])
        away_from.hears_moderation = False
        self._moderator = successor
        self._handover = asyncio.ensure_future(successor.hear_moderation())

    def _room_dropped(self, room: str) -> None:
        self._dropped.setdefault(room, 0)
        self._topology_changed()

    def _topology_changed(self) -> None:
        self._again = True
        if self._rehoming is None or self._rehoming.done():
            self._rehoming = asyncio.create_task(self._rehome(), name="redis-cluster-rehome")

    async def _watch(self) -> None:
        """Read the slots every ping interval: a failover or a slot moved may leave a session's connection
        open on a node that no longer serves its rooms."""
        while True:
            await asyncio.sleep(self._ping_interval)
            self._topology_changed()

    async def _rehome(self) -> None:
        while self._again:
            self._again = False
            try:
                await self._shards.refresh()
            except (RedisError, RedisClusterException, OSError) as exc:
                log.info("cluster slots not read: %s", exc)
                await asyncio.sleep(RETRY_PAUSE_SECONDS)
                self._again = True
                continue
            masters = set(self._shards.masters())
            for name in masters:
                self._session(name)  # a new master: its rooms, and one more ear on the moderation channel
            for name, session in list(self._sessions.items()):
                for room in session.rooms:
                    await self._place(room, name, session)
                if name not in masters and not session.rooms:
                    if session is self._moderator:
                        self._moderation_moves(away_from=session)
                    del self._sessions[name]
                    await session.close()

    async def _place(self, room: str, name: str, session: StreamSubscriber) -> None:
        owner = self._shards.shard_of(self._keys.channel(room))
        dropped = self._dropped.get(room)
        if owner is not None and owner != name:
            feed = session.release(room)
            if feed is not None:
                log.info("room %s moves from %s to %s", room, name, owner)
                self._dropped.pop(room, None)
                await self._session(owner).adopt(room, feed)
        elif dropped is not None:
            # Unsubscribed by Redis, and the slots read still name this shard: read them again soon, and
            # after a while subscribe here again (its answer tells where the slot went).
            self._dropped[room] = dropped + 1
            if dropped + 1 >= STORE_ATTEMPTS:
                feed = session.release(room)
                self._dropped.pop(room, None)
                if feed is not None:
                    await session.adopt(room, feed)
            else:
                await asyncio.sleep(RETRY_PAUSE_SECONDS)
                self._again = True

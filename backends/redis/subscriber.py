"""The cluster's subscriber: one pub/sub session per master, and rooms moving between them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from redis.exceptions import RedisClusterException, RedisError

from backends.base import DeliveryTarget
from backends.errors import BackendUnavailable
from backends.redis.channel import PresenceChange, Signal
from backends.redis.cluster import RETRY_PAUSE_SECONDS, STORE_ATTEMPTS, ClusterShards
from backends.redis.delivery import SubscriberStats
from backends.redis.keys import RedisKeys, StreamId
from backends.redis.session import ShardHooks, StreamSubscriber
from backends.redis.tasks import cancel_and_wait

log = logging.getLogger(__name__)


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

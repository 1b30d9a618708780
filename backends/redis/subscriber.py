"""The subscriber: this process's pub/sub sessions, one per place the deployment names (one server, a
Sentinel set's master, or each master of a Redis Cluster), each with the rooms whose channel belongs
there, and rooms moving between them.

A room moves when its place changes (a cluster's slot moved): when Redis unsubscribes it (an unasked
``sunsubscribe``), when a session is lost (a master died), and when a reading of where rooms are, every
ping interval, shows another place (a failover or a slot moved while the connection stayed open). The
room's session at the new place subscribes and catches up from the stream, so what was published in
between is delivered once and in order. Where there is one place, rooms never move.

One session listens to the moderation channel; when it is lost, another takes over.
"""

from __future__ import annotations

import asyncio
import logging

from redis.exceptions import RedisClusterException, RedisError

from backends.errors import BackendUnavailable
from backends.redis.delivery import Delivery, SubscriberStats
from backends.redis.deployment import Deployment
from backends.redis.entries import StreamId
from backends.redis.session import PubSubSession
from backends.redis.tasks import cancel_and_wait

log = logging.getLogger(__name__)


# A room Redis unsubscribed, found still at the same place this many times, is subscribed there again.
DROPPED_CHECKS = 4
RETRY_PAUSE_SECONDS = 0.3


class Subscriber:
    """``Backend.subscribe`` and ``unsubscribe`` over the deployment's pub/sub sessions."""

    def __init__(self, deployment: Deployment, delivery: Delivery, ping_interval: float) -> None:
        self._deployment = deployment
        self._keys = deployment.keys
        self._delivery = delivery
        self._ping_interval = ping_interval
        self._sessions: dict[str, PubSubSession] = {}
        self._dropped: dict[str, int] = {}  # rooms Redis unsubscribed -> times found still at the same place
        self._rehoming: asyncio.Task[None] | None = None
        self._again = False
        self._watcher: asyncio.Task[None] | None = None
        self._moderator: PubSubSession | None = None  # the session listening to the moderation channel
        self._handover: asyncio.Future[None] | None = None

    @property
    def stats(self) -> SubscriberStats:
        return self._delivery.stats

    async def start(self, timeout: float) -> None:
        """Begin a session per place; raise ``BackendUnavailable`` if none listens to the moderation
        channel within ``timeout``. Once this returns, every moderation notice reaches this process."""
        places = self._deployment.places()
        if not places:
            raise BackendUnavailable("no master of the Redis Cluster is known")
        self._moderator = self._session(places[0], hears_moderation=True)
        sessions = [self._session(place) for place in places]
        heard = [asyncio.ensure_future(session.moderation_heard()) for session in sessions]
        try:
            done, _ = await asyncio.wait(heard, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in heard:
                waiter.cancel()
        if not done:
            raise BackendUnavailable(self.down_reason)
        self._watcher = asyncio.create_task(self._watch(), name="redis-places")

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
        if len(self._sessions) == 1:
            return next(iter(self._sessions.values())).down_reason
        reasons = [f"{name}: {session.down_reason}" for name, session in self._sessions.items()]
        return "; ".join(reasons) or "no master of the Redis Cluster is known"

    async def subscribe(self, room: str, timeout: float) -> StreamId:
        session = self._holder(room)
        if session is None:
            place = self._deployment.place_of(self._keys.channel(room))
            if place is None:
                raise BackendUnavailable(f"could not subscribe to room {room}: no master serves its slot")
            session = self._session(place)
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
        """Return once this process has delivered ``room``'s messages up to ``key`` (see
        ``PubSubSession.wait_delivered``)."""
        session = self._holder(room)
        if session is not None:
            await session.wait_delivered(room, key, timeout)

    def _holder(self, room: str) -> PubSubSession | None:
        return next((session for session in self._sessions.values() if session.has(room)), None)

    def _session(self, place: str, hears_moderation: bool = False) -> PubSubSession:
        session = self._sessions.get(place)
        if session is None:
            session = PubSubSession(
                place, self._deployment, self._delivery, self, self._ping_interval, hears_moderation
            )
            self._sessions[place] = session
            session.begin()
        return session

    # -- what the sessions tell (``SessionOwner``) -------------------------------------------------

    def session_lost(self, session: PubSubSession) -> None:
        if session is self._moderator:
            self._moderation_moves(away_from=session)
        self._topology_changed()

    def room_dropped(self, room: str) -> None:
        self._dropped.setdefault(room, 0)
        self._topology_changed()

    # -- rooms moving between places ---------------------------------------------------------------

    def _moderation_moves(self, away_from: PubSubSession) -> None:
        """Let another place's session listen to the moderation channel (a live one if there is)."""
        others = [session for session in self._sessions.values() if session is not away_from]
        if not others:
            return
        successor = next((session for session in others if session.is_live), others[0])
        away_from.hears_moderation = False
        self._moderator = successor
        self._handover = asyncio.ensure_future(successor.hear_moderation())

    def _topology_changed(self) -> None:
        self._again = True
        if self._rehoming is None or self._rehoming.done():
            self._rehoming = asyncio.create_task(self._rehome(), name="redis-rehome")

    async def _watch(self) -> None:
        """Read where rooms are every ping interval: a failover or a slot moved may leave a session's
        connection open on a node that no longer serves its rooms."""
        while True:
            await asyncio.sleep(self._ping_interval)
            self._topology_changed()

    async def _rehome(self) -> None:
        while self._again:
            self._again = False
            try:
                await self._deployment.refresh()
            except (RedisError, RedisClusterException, OSError) as exc:
                log.info("where rooms are not read: %s", exc)
                await asyncio.sleep(RETRY_PAUSE_SECONDS)
                self._again = True
                continue
            places = set(self._deployment.places())
            for name in places:
                self._session(name)  # a new master: its rooms, and one more ear on the moderation channel
            for name, session in list(self._sessions.items()):
                for room in session.rooms:
                    await self._place(room, name, session)
                if name not in places and not session.rooms:
                    if session is self._moderator:
                        self._moderation_moves(away_from=session)
                    del self._sessions[name]
                    await session.close()

    async def _place(self, room: str, name: str, session: PubSubSession) -> None:
        owner = self._deployment.place_of(self._keys.channel(room))
        dropped = self._dropped.get(room)
        if owner is not None and owner != name:
            feed = session.release(room)
            if feed is not None:
                log.info("room %s moves from %s to %s", room, name, owner)
                self._dropped.pop(room, None)
                await self._session(owner).adopt(room, feed)
        elif dropped is not None:
            # Unsubscribed by Redis, and the slots read still name this place: read them again soon, and
            # after a while subscribe here again (its answer tells where the slot went).
            self._dropped[room] = dropped + 1
            if dropped + 1 >= DROPPED_CHECKS:
                feed = session.release(room)
                self._dropped.pop(room, None)
                if feed is not None:
                    await session.adopt(room, feed)
            else:
                await asyncio.sleep(RETRY_PAUSE_SECONDS)
                self._again = True

"""A pub/sub session: one connection to one server that pushes rooms' messages (a deployment's place,
``Deployment.places``), live messages for the rooms the subscriber gave it, with no gap and no
duplicate across reconnects.

Redis pub/sub forgets whatever it published while a subscriber was away. So each subscribed room
keeps the id of the last message delivered. A room's first subscription reads where its stream ends
on the pub/sub connection itself (RESP3), right behind the SSUBSCRIBE: Redis answers in turn with what it
pushes, so every message pushed before that answer lies at or before the end it names, and every later
one beyond it, and the room is live after one round trip. A resubscription after a reconnect SSUBSCRIBEs,
waits for Redis to confirm it, reads the room's stream after the last delivered id (XRANGE) and delivers
it, and only then delivers live messages, dropping any whose id is not beyond the last delivered one.

The connection is driven directly rather than through redis-py's ``PubSub``: ``PubSub`` reconnects
and resubscribes on its own, and live messages arriving on such a silent reconnect would overtake the
gap fill. Here every failure ends the session, and the next session starts from the top. The loop
reads with a timeout (never a spinning zero timeout), sends its own PINGs when the connection has been
quiet and restarts a session that stays silent, so a connection that died without an error (a dropped
route, a stalled proxy) is replaced.

A session also ends when its connection no longer reaches the server it is for (``Deployment.moved``:
on Sentinel, the master moved), and a catch-up on the new master that finds the stream never issued the
last id delivered tells the hub ``gap`` (``backends.redis.catch_up``). A room moves between sessions
when its cluster slot moves (``release``/``adopt``, driven by ``backends.redis.subscriber``).

Redis coming back empty is noticed by the store's epoch (``backends.redis.epoch``), and per room by the
room's epoch (``RedisKeys.room_epoch``), read with the stream's end and at every catch-up, and carried by
the message that made the stream.

Changes to messages (``backends.redis.log``) come as messages do: live on the room's channel, and on a
resubscription with the catch-up, in the room's one order. One session listens to the moderation
channel; a session after the first tells the hub ``moderation_changed`` once it listens, since notices
may have gone by while it was away.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Protocol

from redis.asyncio.connection import AbstractConnection
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import RedisError

from backends.changes import MessageChange
from backends.errors import BackendUnavailable
from backends.redis.catch_up import catch_up
from backends.redis.channel import Payload, PresenceChange, Published, Signal, decode
from backends.redis.delivery import Delivery, Feed, release
from backends.redis.entries import StreamId, parse_stream_id
from backends.redis.scripts import ANCHOR
from backends.redis.tasks import cancel_and_wait

if TYPE_CHECKING:
    from backends.redis.deployment import Deployment

log = logging.getLogger(__name__)

READ_WAIT_SECONDS = 1.0  # how long one read waits before the loop looks at its clocks
SILENT_PINGS = 3  # ping intervals of silence (two PINGs unanswered) before the connection counts as dead
_RECONNECT_BACKOFF = ExponentialWithJitterBackoff(cap=2.0, base=0.1)
_PUSH_KINDS = frozenset({"message", "subscribe", "unsubscribe", "smessage", "ssubscribe", "sunsubscribe"})


class SubscriberStalled(Exception):
    """The pub/sub connection stopped answering, or Redis lost its data: start a new session."""


class SessionOwner(Protocol):
    """What the subscriber (``backends.redis.subscriber``) hears from each of its sessions: one was
    lost, or Redis unsubscribed a room by itself (its slot left the session's server)."""

    def session_lost(self, session: PubSubSession) -> None: ...

    def room_dropped(self, room: str) -> None: ...


class PubSubSession:
    def __init__(
        self,
        place: str,
        deployment: Deployment,
        delivery: Delivery,
        owner: SessionOwner,
        ping_interval: float,
        hears_moderation: bool,
    ) -> None:
        self.place = place
        self._deployment = deployment
        self._commands = deployment.commands
        self._keys = deployment.keys
        self._delivery = delivery
        self._owner = owner
        self._ping_interval = ping_interval
        self._store_epoch = deployment.store_epoch()
        self._feeds: dict[str, Feed] = {}
        self._conn: AbstractConnection | None = None
        # (Un)subscribes sent per room and not yet confirmed on this connection.
        self._outstanding: dict[str, int] = {}
        # The rooms whose stream end was asked for on this connection, in the order of the answers.
        self._anchors: deque[tuple[str, Feed]] = deque()
        self._task: asyncio.Task[None] | None = None
        self._moderation_heard = asyncio.Event()  # set once a session listens to the moderation channel
        self.hears_moderation = hears_moderation  # one session listens to it, which every server hears
        self._took_over = False  # whether it listens instead of another session, since when?
        self._live = asyncio.Event()
        self.down_reason = "the pub/sub connection is not started"

    # -- lifecycle -----------------------------------------------------------------------------

    def begin(self) -> None:
        """Begin the session loop."""
        self._task = asyncio.create_task(self._run(), name=f"redis-pubsub-{self.place}")

    async def moderation_heard(self) -> None:
        """Return once a session listens to the moderation channel."""
        await self._moderation_heard.wait()

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)

    @property
    def is_live(self) -> bool:
        return self._live.is_set()

    # -- what the hub drives -------------------------------------------------------------------

    async def subscribe(self, room: str, timeout: float) -> StreamId:
        """Deliver ``room``'s new messages; return the id delivery starts after (see Backend.subscribe)."""
        feed = self._feeds.get(room)
        if feed is None:
            feed = self._feeds[room] = Feed()
            await self._send("SSUBSCRIBE", room)
            await self._ask_anchor(room, feed)
        try:
            await asyncio.wait_for(feed.ready.wait(), timeout)
        except TimeoutError:
            if self._feeds.get(room) is feed and not feed.live:
                del self._feeds[room]
                await self._send("SUNSUBSCRIBE", room)
            raise BackendUnavailable(f"could not subscribe to room {room}: {self.down_reason}") from None
        return feed.last

    async def unsubscribe(self, room: str) -> None:
        feed = self._feeds.pop(room, None)
        if feed is not None:
            feed.ready.set()  # nobody may wait for a feed that is gone
            release(feed.waiters)
            await self._send("SUNSUBSCRIBE", room)

    async def hear_moderation(self) -> None:
        """Listen to the moderation channel from now on, instead of another session (which may have
        missed notices while it was lost): told ``moderation_changed`` once it listens."""
        if self.hears_moderation:
            return
        self.hears_moderation = self._took_over = True
        conn = self._conn
        if conn is not None:
            try:
                await conn.send_command("SUBSCRIBE", self._keys.moderation_channel, check_health=False)
            except (RedisError, OSError) as exc:
                log.warning("pub/sub SUBSCRIBE to the moderation channel failed: %s", exc)

    @property
    def rooms(self) -> list[str]:
        return list(self._feeds)

    def has(self, room: str) -> bool:
        return room in self._feeds

    def release(self, room: str) -> Feed | None:
        """Stop delivering ``room`` here and hand over where its delivery stands (its waiters and
        subscribers keep waiting): its slot moved to another server's session. No SUNSUBSCRIBE
        is sent: this node no longer serves the slot, and would answer MOVED, which ends a session; what
        it may still push for the room is dropped, as for any room not subscribed here."""
        feed = self._feeds.pop(room, None)
        if feed is not None:
            feed.live = False
            feed.ready.clear()
        return feed

    async def adopt(self, room: str, feed: Feed) -> None:
        """Deliver ``room`` from where ``feed`` stands (another shard's session released it): once
        subscribed here, the catch-up reads what was stored meanwhile."""
        self._feeds[room] = feed
        await self._send("SSUBSCRIBE", room)
        if not feed.anchored:
            await self._ask_anchor(room, feed)

    async def wait_delivered(self, room: str, key: StreamId, timeout: float) -> None:
        """Return once this process has delivered ``room``'s messages up to ``key`` (``Feed.wait_delivered``)."""
        feed = self._feeds.get(room)
        if feed is not None:
            await feed.wait_delivered(room, key, timeout)

    async def _ask_anchor(self, room: str, feed: Feed) -> None:
        """Ask, behind the room's SSUBSCRIBE on the same connection, where its stream ends now."""
        conn = self._conn
        if conn is None:
            return  # the next session asks
        self._anchors.append((room, feed))
        keys = [self._keys.stream(room), self._keys.room_epoch(room)]
        try:
            await conn.send_command(*ANCHOR.command(keys, []), check_health=False)
        except (RedisError, OSError) as exc:
            log.warning("pub/sub stream end for room %s not asked: %s", room, exc)

    def _anchor(self, answer: list[object]) -> None:
        if not self._anchors:
            log.warning("pub/sub: an answer nobody asked for: %r", answer)
            return
        room, feed = self._anchors.popleft()
        if self._feeds.get(room) is not feed:
            return  # unsubscribed meanwhile
        last, epoch = answer
        if last:
            feed.last = max(feed.last, parse_stream_id(str(last)))
        feed.epoch = str(epoch)
        feed.anchored = feed.live = True
        feed.ready.set()

    async def _send(self, command: str, room: str) -> None:
        # Without a connection, the next session (un)subscribes from ``_feeds``; a failed send ends this
        # session, and the next one starts from ``_feeds`` too.
        conn = self._conn
        if conn is None:
            return
        self._outstanding[room] = self._outstanding.get(room, 0) + 1
        try:
            await conn.send_command(command, self._keys.channel(room), check_health=False)
        except (RedisError, OSError) as exc:
            log.warning("pub/sub %s for room %s failed: %s", command, room, exc)

    # -- the session loop ----------------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, SubscriberStalled) as exc:
                self.down_reason = f"Redis pub/sub connection lost: {exc}"
                log.warning("%s; reconnecting", self.down_reason)
            except Exception as exc:  # the loop must outlive any bug in one session
                self.down_reason = f"Redis pub/sub session failed: {exc!r}"
                log.exception("Redis pub/sub session failed; reconnecting")
            if self._live.is_set():
                failures = 0
                self._delivery.stats.sessions_lost += 1
            self._live.clear()
            self._owner.session_lost(self)
            failures += 1
            await asyncio.sleep(_RECONNECT_BACKOFF.compute(failures))

    async def _session(self) -> None:
        conn = self._deployment.pubsub_connection(self.place)
        try:
            await conn.connect()  # type: ignore[no-untyped-call]
            # Connected to the master of a moment ago (Sentinel's answers change during a failover), or the
            # commands (the catch-up's reads) still go to another: start again.
            if (moved := await self._deployment.moved(conn)) is not None:
                raise SubscriberStalled(moved)
            await self._check_epoch()
            # From here on a newly subscribed room sends its own SSUBSCRIBE; the rooms known now go in one.
            self._conn = conn
            self._outstanding = dict.fromkeys(self._feeds, 1)
            self._anchors.clear()
            # Loaded on this connection before any room asks where its stream ends: a Redis that restarted
            # or a new master may not hold it. (Its answer, the SHA1, is a string, which ``_handle`` passes by.)
            await conn.send_command("SCRIPT", "LOAD", ANCHOR.text, check_health=False)
            if self.hears_moderation:
                await conn.send_command("SUBSCRIBE", self._keys.moderation_channel, check_health=False)
            for channels in self._deployment.subscribe_groups([self._keys.channel(room) for room in self._feeds]):
                await conn.send_command("SSUBSCRIBE", *channels, check_health=False)
            for room, feed in list(self._feeds.items()):
                if not feed.anchored:
                    await self._ask_anchor(room, feed)
            self._live.set()
            log.info("Redis pub/sub connected to %s (%d rooms)", self.place, len(self._feeds))
            await self._read(conn)
        finally:
            self._conn = None
            for feed in self._feeds.values():
                feed.live = False
                feed.ready.clear()
            await conn.disconnect(nowait=True)

    async def _read(self, conn: AbstractConnection) -> None:
        loop = asyncio.get_running_loop()
        wait = min(READ_WAIT_SECONDS, self._ping_interval)
        heard = pinged = checked = loop.time()
        while True:
            reply = await conn.read_response(timeout=wait, push_request=True)
            if reply is not None:
                await self._handle(reply)
                heard = loop.time()
            now = loop.time()
            if now - heard >= self._ping_interval * SILENT_PINGS:
                raise SubscriberStalled(f"no answer to pings for {now - heard:.1f}s")
            if now - heard >= self._ping_interval and now - pinged >= self._ping_interval:
                pinged = now
                await conn.send_command("PING", check_health=False)
            if now - checked >= self._ping_interval:
                # Redis may also lose its data without dropping us (FLUSHALL): check the epoch now and then.
                checked = now
                if await self._store_epoch.vanished():
                    raise SubscriberStalled("Redis lost its data")
                # A demoted master keeps its subscribers' connections open and silent: ask where it is.
                if (moved := await self._deployment.moved(conn)) is not None:
                    raise SubscriberStalled(moved)

    async def _handle(self, reply: object) -> None:
        # Pushes: ["smessage", channel, data] or ["ssubscribe" | "sunsubscribe", channel, count] for the
        # rooms' shard channels, the same without "s" for the moderation channel. Answers: a
        # stream end asked for (lua/anchor.lua: [last id, epoch]), or a PING's "PONG".
        if isinstance(reply, list) and len(reply) == 2:
            self._anchor(reply)
        if not isinstance(reply, list) or len(reply) != 3 or reply[0] not in _PUSH_KINDS:
            return
        kind, channel, data = reply
        if channel == self._keys.moderation_channel:
            self._moderation_notice(kind)
            return
        room = self._keys.room_of_channel(channel)
        if room is None:
            return
        feed = self._feeds.get(room)
        if kind == "smessage":
            if feed is not None:
                self._heard(room, feed, decode(room, data))
            return
        if kind not in ("ssubscribe", "sunsubscribe"):
            return
        asked = self._outstanding.pop(room, 0)
        if not asked and kind == "sunsubscribe" and feed is not None:
            # Redis unsubscribed us itself: the room's slot left this shard.
            feed.live = False
            feed.ready.clear()
            self._owner.room_dropped(room)
            return
        outstanding = asked - 1
        if outstanding > 0:
            # Another (un)subscribe for this room follows: only the last one says where it stands.
            self._outstanding[room] = outstanding
        elif kind == "ssubscribe" and feed is not None and not feed.live:
            if not feed.anchored:
                # Pushed from here on; the stream end asked for next says where delivery started.
                feed.live = True
                return
            # Whatever was read for this room before now belonged to an earlier subscription, and the
            # stream holds it: the catch-up delivers it in order.
            await catch_up(self._commands, self._keys, self._delivery, room, feed)
            feed.live = True
            feed.ready.set()

    def _heard(self, room: str, feed: Feed, payload: Payload) -> None:
        match payload:
            case Published(message, epoch):
                if not feed.live:
                    return
                if epoch is not None:  # this message made the room's stream
                    if feed.epoch and epoch != feed.epoch:
                        self._delivery.stream_lost(room, feed)  # and another one was delivered from before
                    feed.epoch = epoch
                key = parse_stream_id(message.id)
                if key > feed.last:
                    self._delivery.deliver(feed, key, message)
            case MessageChange(at=at):
                if feed.live and (key := parse_stream_id(at)) > feed.last:
                    self._delivery.changed(feed, key, payload)
            case Signal() | PresenceChange():
                self._delivery.notice(room, payload)

    def _moderation_notice(self, kind: str) -> None:
        if kind == "message":
            self._delivery.moderation_changed()
        elif kind == "subscribe":
            if self._moderation_heard.is_set() or self._took_over:
                self._delivery.moderation_changed()  # what changed while no session listened
            self._took_over = False
            self._moderation_heard.set()

    # -- Redis losing its data ---------------------------------------------------------------------

    async def _check_epoch(self) -> None:
        """If the store lost its data since the last session, the data we delivered from is gone: tell
        the hub, and deliver the rooms again from their new beginning."""
        if not await self._store_epoch.renewed():
            return
        log.warning("Redis came back without its data; telling %d rooms about the gap", len(self._feeds))
        self._delivery.stats.resets += 1
        for room, feed in self._feeds.items():
            feed.start_over()
            self._delivery.gap(room)

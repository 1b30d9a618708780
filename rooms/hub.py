"""The room layer: every way in (socket, HTTP POST) stores through here, and every stored message
comes back out through here to this process's sockets.

Fan-out is built for big rooms: each message is encoded to JSON and framed once, and all the frames a
room produces within one event-loop iteration go to each socket in a single write.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from backends.base import Backend, StoredMessage, StoreResult
from rooms.errors import ShuttingDown
from rooms.metrics import RoomsMetrics
from rooms.protocol import GAP, ClientMessage, encode, text_frame

log = logging.getLogger(__name__)

REPLAY_PAGE = 200


class Member(Protocol):
    """What the hub needs of a socket in a room."""

    def send_frames(self, data: bytes) -> None:
        """Write complete, already-framed WebSocket frames; never raises for a closed or slow peer."""

    def close_going_away(self) -> None:
        """Close with 1001 because the server is shutting down."""


class _RoomState:
    __slots__ = ("catching_up", "live", "pending", "subscribed")

    def __init__(self) -> None:
        self.live: set[Member] = set()
        # Members still replaying history: live messages wait here until the replay has caught up.
        self.catching_up: dict[Member, list[StoredMessage]] = {}
        self.pending: list[bytes] = []
        self.subscribed: asyncio.Future[None] | None = None


class RoomHub:
    def __init__(self, backend: Backend, metrics: RoomsMetrics) -> None:
        self.backend = backend
        self.metrics = metrics
        self._rooms: dict[str, _RoomState] = {}
        self._dirty: list[_RoomState] = []
        self._unsubscribing: dict[str, asyncio.Future[None]] = {}
        self._flush_scheduled = False
        self._in_flight = 0
        self._accepting = True
        self._idle = asyncio.Event()
        self._idle.set()
        backend.set_delivery_target(self)

    # -- the way in ---------------------------------------------------------------------------

    async def post(self, room: str, message: ClientMessage) -> StoreResult:
        """Store a message; the backend then delivers it back here (and to every other process)."""
        return await self.post_soon(room, message)

    def post_soon(self, room: str, message: ClientMessage) -> asyncio.Future[StoreResult]:
        """``post`` without waiting: the answer comes as a Future, and posts keep the order they were made in."""
        if not self._accepting:
            refused: asyncio.Future[StoreResult] = asyncio.get_running_loop().create_future()
            refused.set_exception(ShuttingDown("the server is shutting down; this message was not sent"))
            return refused
        self._in_flight += 1
        self._idle.clear()
        store = self.backend.store_soon(room, message.handle, message.message, message.client_id)
        store.add_done_callback(self._stored)
        return store

    def _stored(self, store: asyncio.Future[StoreResult]) -> None:
        self._in_flight -= 1
        if not self._in_flight:
            self._idle.set()
        if store.cancelled() or store.exception() is not None:
            return
        if store.result().duplicate:
            self.metrics.messages_deduplicated.inc()
        else:
            self.metrics.messages_stored.inc()

    def stop_accepting(self) -> None:
        """Refuse new posts (shutdown): what is already in flight is still stored and delivered."""
        self._accepting = False

    async def wait_idle(self) -> None:
        """Return once no store is in flight (shutdown waits here so every acknowledged message is stored)."""
        await self._idle.wait()

    # -- membership -----------------------------------------------------------------------------

    async def join(self, member: Member, room: str) -> None:
        """Add a socket to a room: every message stored once this returns reaches it, held back until
        ``go_live``. A socket joins before its handshake is answered, so a client that has connected
        misses nothing sent after that."""
        state = self._rooms.get(room)
        if state is None:
            state = self._rooms[room] = _RoomState()
            self.metrics.active_rooms.inc()
        state.catching_up[member] = []
        try:
            await self._subscribed(room, state)
        except BaseException:
            self.leave(member, room)
            raise

    async def go_live(self, member: Member, room: str, since: str | None) -> None:
        """With ``since``, first replay what the socket missed; then send what was held back since ``join``
        (no gap, no duplicate) and deliver live from here on."""
        state = self._rooms.get(room)
        if state is None or member not in state.catching_up:
            return  # it left before its handshake was over
        try:
            last_sent = await self._replay(member, room, since) if since is not None else None
        except BaseException:
            self.leave(member, room)
            raise
        if member not in state.catching_up:
            return  # it left while replaying
        # Frames queued before this point were addressed to the members live then, not to this one.
        self._flush_room(state)
        backlog = state.catching_up.pop(member)
        if last_sent is not None:
            last_key = self.backend.id_key(last_sent)
            backlog = [message for message in backlog if self.backend.id_key(message.id) > last_key]
        if backlog:
            member.send_frames(b"".join(text_frame(encode(message.to_wire())) for message in backlog))
        state.live.add(member)

    async def _subscribed(self, room: str, state: _RoomState) -> None:
        # Every joiner waits for the one subscription, so none goes live before messages can arrive.
        if state.subscribed is None:
            state.subscribed = asyncio.ensure_future(self._subscribe_after_unsubscribe(room))
        try:
            await asyncio.shield(state.subscribed)
        except Exception:
            state.subscribed = None
            raise

    async def _subscribe_after_unsubscribe(self, room: str) -> None:
        leaving = self._unsubscribing.get(room)
        if leaving is not None:
            await leaving
        await self.backend.subscribe(room)

    async def _replay(self, member: Member, room: str, since: str) -> str:
        recovery = await self.backend.recovery(room, since)
        if recovery.gap:
            member.send_frames(text_frame(encode(GAP)))
        cursor = recovery.replay_after
        while True:
            page = await self.backend.history(room, REPLAY_PAGE, after=cursor)
            if page.messages:
                member.send_frames(b"".join(text_frame(encode(message.to_wire())) for message in page.messages))
                cursor = page.messages[-1].id
            if not page.has_more:
                return cursor

    def leave(self, member: Member, room: str) -> None:
        state = self._rooms.get(room)
        if state is None:
            return
        state.live.discard(member)
        state.catching_up.pop(member, None)
        if state.live or state.catching_up:
            return
        del self._rooms[room]
        self.metrics.active_rooms.dec()
        if state.subscribed is not None and room not in self._unsubscribing:
            self._unsubscribing[room] = asyncio.ensure_future(self._unsubscribe(room))

    async def _unsubscribe(self, room: str) -> None:
        try:
            await self.backend.unsubscribe(room)
        except Exception:
            log.warning("unsubscribing from room %s failed", room, exc_info=True)
        finally:
            del self._unsubscribing[room]

    def online(self, room: str) -> int:
        state = self._rooms.get(room)
        return len(state.live) + len(state.catching_up) if state else 0

    def close_all(self) -> None:
        self._flush()  # nothing may follow a close frame: the broadcasts waiting to go out go first
        for state in list(self._rooms.values()):
            for member in [*state.live, *state.catching_up]:
                member.close_going_away()

    async def wait_empty(self, poll_seconds: float = 0.05) -> None:
        """Return once every socket has left (after ``close_all``, when the close handshakes are done)."""
        while self._rooms:
            await asyncio.sleep(poll_seconds)

    # -- the way out (DeliveryTarget) ----------------------------------------------------------

    def deliver(self, message: StoredMessage) -> None:
        state = self._rooms.get(message.room)
        if state is None:
            return
        for backlog in state.catching_up.values():
            backlog.append(message)
        if not state.live:
            return
        if not state.pending:
            self._dirty.append(state)
        state.pending.append(text_frame(encode(message.to_wire())))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            # Flush one loop iteration later than the next: the callbacks of the next iteration's reads
            # (other senders' frames that arrived meanwhile) then join this batch, so a busy room writes
            # more frames per system call. An idle loop turns over in microseconds, so latency barely moves.
            loop = asyncio.get_running_loop()
            loop.call_soon(loop.call_soon, self._flush)

    def send_in_turn(self, member: Member, room: str, data: bytes) -> None:
        """Send frames to one member after the room's broadcasts already waiting here: a sender hears of
        its earlier messages before the reply to a later frame (a resent message, an error)."""
        state = self._rooms.get(room)
        if state is not None:
            self._flush_room(state)
        member.send_frames(data)

    def gap(self, room: str) -> None:
        state = self._rooms.get(room)
        if state is None:
            return
        self._flush_room(state)
        frame = text_frame(encode(GAP))
        for member in [*state.live, *state.catching_up]:
            member.send_frames(frame)

    def _flush(self) -> None:
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, []
        for state in dirty:
            self._flush_room(state)

    def _flush_room(self, state: _RoomState) -> None:
        if not state.pending:
            return
        data = b"".join(state.pending) if len(state.pending) > 1 else state.pending[0]
        count = len(state.pending)
        state.pending = []
        # A member may leave (and so change the set) when a write fails.
        members = list(state.live)
        for member in members:
            member.send_frames(data)
        self.metrics.deliveries.inc(count * len(members))

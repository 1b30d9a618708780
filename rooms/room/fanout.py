"""Local fan-out: the sockets of this process in each room, and the messages the backend delivers to them.

Built for big rooms: each message is encoded to JSON and framed once, and all the frames a room produces
within one event-loop iteration go to each socket in a single write. A change to a message (an edit, a
deletion, reactions) joins the same batch in its place, and goes only to the sockets that asked for its
feature (``rooms.room.audience``).

A socket joins before its handshake is answered and is *held* until it goes live: what is delivered
meanwhile waits in its backlog, so a client that has connected misses nothing. A socket that replays
history first goes live only once delivery here has caught up with the last message it replayed (a
store's read can run a moment ahead of its delivery), and its backlog then skips what it replayed: no
gap and no duplicate, with no help from the backend's reads. A backlog that outgrows what its socket may
still be sent closes the socket as too slow, as a live socket's send buffer would.
"""

from __future__ import annotations

import asyncio
import logging
from typing import NamedTuple

from backends.base import Backend, StoredMessage
from backends.changes import ChangeKind, MessageChange
from rooms.change_frames import encode_change
from rooms.protocol import GAP, Feature, encode_message, text_frame
from rooms.room.audience import write_by_audience
from rooms.room.member import Member
from rooms.room.metrics import RoomsMetrics

log = logging.getLogger(__name__)

# How long a socket that replayed history waits for delivery to reach what it replayed before it goes
# live regardless (the message is normally already on its way: microseconds).
DELIVERY_WAIT_SECONDS = 2.0

IdKey = tuple[int, ...]


class Replayed(NamedTuple):
    """What a replay sent: up to which position, and which changes (by position) among it."""

    seen_through: str
    changes: frozenset[str]


class _RoomState:
    __slots__ = (
        "anchor",
        "asked",
        "catching_up",
        "held_bytes",
        "last_delivered",
        "last_encoded",
        "live",
        "pending",
        "pending_changes",
        "subscribed",
        "waiting",
    )

    def __init__(self) -> None:
        # As an ordered set: a broadcast writes to the sockets in the order they went live (about the
        # order they connected), which walks their memory, the kernel's included, in the order it was taken.
        self.live: dict[Member, None] = {}
        # Members not live yet: what is delivered meanwhile waits here.
        self.catching_up: dict[Member, list[StoredMessage | MessageChange]] = {}
        # The framed size of each held member's backlog (a message deleted from it stays counted).
        self.held_bytes: dict[Member, int] = {}
        self.pending: list[bytes] = []
        # The feature of each change frame in ``pending``, by index: empty when it holds messages only.
        self.pending_changes: dict[int, Feature] = {}
        # The change features each member that asked for one asked for.
        self.asked: dict[Member, frozenset[Feature]] = {}
        self.subscribed: asyncio.Future[None] | None = None
        # Delivery here has passed every id up to the greater of these two.
        self.anchor: IdKey = (0,)
        self.last_delivered: str | None = None
        self.last_encoded = ("", "")  # the id and JSON of the message last broadcast to live members
        # Replays waiting for delivery to reach an id.
        self.waiting: list[tuple[IdKey, asyncio.Future[None]]] = []


class LocalFanout:
    """The backend's delivery target in this process, and the only place that writes to sockets."""

    def __init__(self, backend: Backend, metrics: RoomsMetrics) -> None:
        self._backend = backend
        self._metrics = metrics
        self._rooms: dict[str, _RoomState] = {}
        self._dirty: list[_RoomState] = []
        self._unsubscribing: dict[str, asyncio.Future[None]] = {}
        self._flush_scheduled = False

    # -- membership -----------------------------------------------------------------------------

    async def join(self, member: Member, room: str) -> None:
        """Hold a socket in a room: every message delivered from the moment this returns reaches it,
        kept back until ``go_live``."""
        state = self._rooms.get(room)
        if state is None:
            state = self._rooms[room] = _RoomState()
            self._metrics.active_rooms.inc()
        state.catching_up[member] = []
        try:
            await self._subscribed(room, state)
        except BaseException:
            self.leave(member, room)
            raise

    def is_held(self, member: Member, room: str) -> bool:
        state = self._rooms.get(room)
        return state is not None and member in state.catching_up

    def held(self, room: str) -> list[Member]:
        """The sockets of ``room`` held back while they catch up."""
        state = self._rooms.get(room)
        return [] if state is None else list(state.catching_up)

    def held_bytes(self, member: Member, room: str) -> int:
        """The framed size of what waits for a held socket until it goes live."""
        state = self._rooms.get(room)
        return 0 if state is None else state.held_bytes.get(member, 0)

    async def delivered_through(self, room: str, message_id: str) -> None:
        """Return once delivery here has passed ``message_id`` (or after ``DELIVERY_WAIT_SECONDS``)."""
        state = self._rooms.get(room)
        key = self._backend.id_key(message_id)
        if state is None or key <= self._through(state):
            return
        entry = (key, asyncio.get_running_loop().create_future())
        state.waiting.append(entry)
        try:
            await asyncio.wait_for(entry[1], DELIVERY_WAIT_SECONDS)
        except TimeoutError:
            log.warning("room %s: delivery did not reach %s within %.0fs", room, message_id, DELIVERY_WAIT_SECONDS)
        finally:
            if entry in state.waiting:
                state.waiting.remove(entry)

    def go_live(self, member: Member, room: str, replayed: Replayed | None) -> None:
        """Send a held socket what was delivered while it was held, past what its replay sent (if it had
        one), and deliver to it live from here on. A change held back goes out unless the replay sent it:
        one made during a long replay to a message the replay had read before may lie behind where the
        replay ended, and its frame must not be lost (at worst it repeats what the message already said)."""
        state = self._rooms.get(room)
        if state is None or member not in state.catching_up:
            return  # it left meanwhile
        # Frames queued before this point were addressed to the members live then, not to this one.
        self._flush_room(state)
        backlog = state.catching_up.pop(member)
        state.held_bytes.pop(member, None)
        if replayed is not None:
            seen = self._backend.id_key(replayed.seen_through)
            backlog = [
                item
                for item in backlog
                if self._backend.id_key(item_position(item)) > seen
                or (isinstance(item, MessageChange) and item.at not in replayed.changes)
            ]
        if backlog:
            member.send_frames(b"".join(text_frame(encode_item(item)) for item in backlog), len(backlog))
        state.live[member] = None

    def leave(self, member: Member, room: str) -> None:
        state = self._rooms.get(room)
        if state is None:
            return
        state.live.pop(member, None)
        state.catching_up.pop(member, None)
        state.held_bytes.pop(member, None)
        state.asked.pop(member, None)
        if state.live or state.catching_up:
            return
        del self._rooms[room]
        self._metrics.active_rooms.dec()
        if state.subscribed is not None and room not in self._unsubscribing:
            self._unsubscribing[room] = asyncio.ensure_future(self._unsubscribe(room))

    def online(self, room: str) -> int:
        state = self._rooms.get(room)
        return len(state.live) + len(state.catching_up) if state else 0

    def counts(self) -> tuple[int, int]:
        """Sockets and rooms with a socket here."""
        sockets = sum(len(state.live) + len(state.catching_up) for state in self._rooms.values())
        return sockets, len(self._rooms)

    def close_all(self) -> None:
        self._flush()  # nothing may follow a close frame: the broadcasts waiting to go out go first
        for state in list(self._rooms.values()):
            for member in [*state.live, *state.catching_up]:
                member.close_going_away()

    async def wait_empty(self, poll_seconds: float = 0.05) -> None:
        """Return once every socket has left (after ``close_all``, when the close handshakes are done)."""
        while self._rooms:
            await asyncio.sleep(poll_seconds)

    async def _subscribed(self, room: str, state: _RoomState) -> None:
        # Every joiner waits for the one subscription, so none goes live before messages can arrive.
        if state.subscribed is None:
            state.subscribed = asyncio.ensure_future(self._subscribe_after_unsubscribe(room, state))
        try:
            await asyncio.shield(state.subscribed)
        except Exception:
            state.subscribed = None
            raise

    async def _subscribe_after_unsubscribe(self, room: str, state: _RoomState) -> None:
        leaving = self._unsubscribing.get(room)
        if leaving is not None:
            await leaving
        state.anchor = max(state.anchor, self._backend.id_key(await self._backend.subscribe(room)))

    async def _unsubscribe(self, room: str) -> None:
        try:
            await self._backend.unsubscribe(room)
        except Exception:
            log.warning("unsubscribing from room %s failed", room, exc_info=True)
        finally:
            del self._unsubscribing[room]

    def _through(self, state: _RoomState) -> IdKey:
        if state.last_delivered is None:
            return state.anchor
        return max(state.anchor, self._backend.id_key(state.last_delivered))

    # -- the way out (DeliveryTarget) ----------------------------------------------------------

    def deliver(self, message: StoredMessage) -> None:
        state = self._rooms.get(message.room)
        if state is None:
            return
        state.last_delivered = message.id
        encoded = encode_message(message)
        frame = text_frame(encoded)
        if state.catching_up:
            self._hold(state, message, len(frame))
        if state.waiting:
            self._release_waiting(state, self._backend.id_key(message.id))
        if not state.live:
            return
        if not state.pending:
            self._dirty.append(state)
        state.last_encoded = (message.id, encoded)
        state.pending.append(frame)
        if not self._flush_scheduled:
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        self._flush_scheduled = True
        # Flush one loop iteration later than the next: the callbacks of the next iteration's reads
        # (other senders' frames that arrived meanwhile) then join this batch, so a busy room writes
        # more frames per system call. An idle loop turns over in microseconds, so latency barely moves.
        loop = asyncio.get_running_loop()
        loop.call_soon(loop.call_soon, self._flush)

    def _hold(self, state: _RoomState, message: StoredMessage, size: int) -> None:
        behind = []
        for member, backlog in state.catching_up.items():
            backlog.append(message)
            held = state.held_bytes[member] = state.held_bytes.get(member, 0) + size
            if held > member.send_room():
                behind.append(member)
        for member in behind:  # each leaves the room as it closes
            member.close_too_slow()

    def gap(self, room: str) -> None:
        state = self._rooms.get(room)
        if state is None:
            return
        self._flush_room(state)
        self._release_waiting(state, None)  # the ids they wait for may never come
        frame = text_frame(GAP)
        for member in [*state.live, *state.catching_up]:
            member.send_frames(frame)

    def ask_changes(self, member: Member, room: str, features: frozenset[Feature]) -> None:
        """Let a socket in ``room`` hear the changes of the change ``features`` it asked for."""
        state = self._rooms.get(room)
        if state is not None and features:
            state.asked[member] = features

    def changed(self, change: MessageChange, feature: Feature, frame: bytes) -> None:
        """A message changed: count delivery here past the change's position; keep a deleted message from
        the sockets still held, which have not been sent it yet; and send its ``frame`` to the sockets that
        asked for its ``feature``: into the room's batch, after the messages and changes before it, for a
        live one; into its backlog for a held one."""
        state = self._rooms.get(change.room)
        if state is None:
            return
        if change.at:  # a store that keeps no positions for changes tells deletions without one
            state.last_delivered = change.at
            if state.waiting:
                self._release_waiting(state, self._backend.id_key(change.at))
        if change.kind is ChangeKind.DELETE:
            for member, backlog in state.catching_up.items():
                if any(isinstance(item, StoredMessage) and item.id == change.id for item in backlog):
                    state.catching_up[member] = [
                        item for item in backlog if not (isinstance(item, StoredMessage) and item.id == change.id)
                    ]
        heard_live = False
        for member, asked in list(state.asked.items()):  # a member may leave as its backlog overflows
            if feature not in asked:
                continue
            if member in state.catching_up:
                self._hold_change(state, member, change, len(frame))
            elif member in state.live:
                heard_live = True
        if heard_live:
            if not state.pending:
                self._dirty.append(state)
            state.pending_changes[len(state.pending)] = feature
            state.pending.append(frame)
            if not self._flush_scheduled:
                self._schedule_flush()

    def _hold_change(self, state: _RoomState, member: Member, change: MessageChange, size: int) -> None:
        state.catching_up[member].append(change)
        held = state.held_bytes[member] = state.held_bytes.get(member, 0) + size
        if held > member.send_room():
            member.close_too_slow()

    def encoded(self, message: StoredMessage) -> str:
        """``message``'s JSON, encoded once: the broadcast's, when it was the room's last one here."""
        state = self._rooms.get(message.room)
        if state is not None and state.last_encoded[0] == message.id:
            return state.last_encoded[1]
        return encode_message(message)

    def send_in_turn(self, member: Member, room: str, data: bytes) -> None:
        """Send frames to one member after the room's broadcasts already waiting here: a sender hears of
        its earlier messages before the reply to a later frame (a resent message, an error)."""
        state = self._rooms.get(room)
        if state is not None:
            self._flush_room(state)
        member.send_frames(data)

    def _release_waiting(self, state: _RoomState, reached: IdKey | None) -> None:
        for entry in list(state.waiting):
            if reached is None or entry[0] <= reached:
                state.waiting.remove(entry)
                if not entry[1].done():
                    entry[1].set_result(None)

    def _flush(self) -> None:
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, []
        for state in dirty:
            self._flush_room(state)

    def _flush_room(self, state: _RoomState) -> None:
        if not state.pending:
            return
        # A member may leave (and so change the set) when a write fails.
        members = list(state.live)
        if state.pending_changes:
            frames, changes = state.pending, state.pending_changes
            state.pending, state.pending_changes = [], {}
            write_by_audience(frames, changes, members, state.asked)
            self._metrics.deliveries.inc((len(frames) - len(changes)) * len(members))
            return
        data = b"".join(state.pending) if len(state.pending) > 1 else state.pending[0]
        count = len(state.pending)
        state.pending = []
        for member in members:
            member.send_frames(data, count)
        self._metrics.deliveries.inc(count * len(members))


def item_position(item: StoredMessage | MessageChange) -> str:
    """Where a message or a change stands in its room's order."""
    return item.at if isinstance(item, MessageChange) else item.id


def encode_item(item: StoredMessage | MessageChange) -> str:
    return encode_change(item) if isinstance(item, MessageChange) else encode_message(item)

"""Presence and typing: who is in each room and who is typing, for the sockets that asked for them.

Presence is counted here for this process's sockets (all of them, whatever they asked for) and combined
across processes by the backend. A room's presence is worked out at most once per ``PRESENCE_INTERVAL``
(PROTOCOL.md: at most 2 frames per second per room), however many sockets come and go meanwhile, and a
frame goes out only when it differs from the last one, so a big room with people coming and going costs
a few frames a second. A socket that asked for presence gets the room's presence at the first tick after
it joined, changed or not.

Typing is relayed, never stored: to this process's sockets that asked for it (never to the typist) and,
through the backend, to the other processes. A room's typing frames go to each socket in one write, at
the next loop iteration, or, when the room had a typing write less than ``TYPING_BATCH_SECONDS`` ago, once
that long has passed since: each is a write to every other socket of the room, so a big room with many
typing would otherwise cost as many writes per socket as typing frames (10% of 500 typing: 25 a second),
and now costs at most 10 a second. A quiet room's typing goes out as soon as before. A socket's held
typing frame goes out before its next message (``before_message``); on another process (Redis) a typing
frame held there may follow its typist's message by up to ``TYPING_BATCH_SECONDS``.

A moderator's deletion comes from the backend (every process hears of it) and goes out at once to the
room's sockets that asked for ``deletes``.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter

from backends.base import MAX_PRESENCE_HANDLES, Backend, RoomPresence
from backends.errors import BackendUnavailable
from rooms.protocol import Feature, encode_delete, encode_presence, encode_typing, text_frame
from rooms.room.fanout import Member
from rooms.room.metrics import RoomsMetrics

log = logging.getLogger(__name__)

PRESENCE_INTERVAL = 0.5
# Sockets joining together (a page reloaded by many, a reconnect storm) share one tick.
FIRST_TICK_DELAY = 0.02
# How long a room whose presence the backend could not record waits before trying again.
RETRY_SECONDS = 2.0
# A room's typing frames go out at most once per this many seconds (the first at once), in one write per socket.
TYPING_BATCH_SECONDS = 0.1


class _Room:
    __slots__ = (
        "again",
        "deleters",
        "fresh",
        "handles",
        "last_frame",
        "last_tick",
        "listeners",
        "members",
        "recorded",
        "ticking",
        "timer",
        "typing_pending",
        "typing_sent_at",
        "typing_timer",
        "typists",
    )

    def __init__(self) -> None:
        self.members: dict[Member, str | None] = {}  # every socket here, and the handle it announced
        self.handles: Counter[str] = Counter()
        self.listeners: set[Member] = set()  # asked for presence
        self.fresh: set[Member] = set()  # asked for presence and have not been sent it yet
        self.typists: set[Member] = set()  # asked for typing
        self.deleters: set[Member] = set()  # asked for deletes
        self.recorded: RoomPresence | None = None  # this process's share, as the backend last recorded it
        self.last_frame: bytes | None = None
        self.last_tick = -math.inf
        self.timer: asyncio.TimerHandle | None = None
        self.ticking = False
        self.again = False  # something changed while a tick was running
        self.typing_pending: list[tuple[Member | None, bytes]] = []  # (the typist here, or None; its frame)
        self.typing_sent_at = -math.inf  # when typing frames last went out
        self.typing_timer: asyncio.TimerHandle | None = None  # holds typing_pending until a batch is due

    def share(self) -> RoomPresence:
        return RoomPresence(len(self.members), tuple(sorted(self.handles)[:MAX_PRESENCE_HANDLES]))


class RoomSignals:
    def __init__(self, backend: Backend, metrics: RoomsMetrics) -> None:
        self._backend = backend
        self._metrics = metrics
        self._rooms: dict[str, _Room] = {}
        self._typing_rooms: list[_Room] = []
        self._ticks: set[asyncio.Task[None]] = set()
        self._closed = False

    # -- sockets ----------------------------------------------------------------------------------

    def join(self, member: Member, room: str, features: frozenset[Feature]) -> None:
        state = self._rooms.get(room)
        if state is None:
            state = self._rooms[room] = _Room()
        state.members[member] = None
        if Feature.PRESENCE in features:
            state.listeners.add(member)
            state.fresh.add(member)
        if Feature.TYPING in features:
            state.typists.add(member)
        if Feature.DELETES in features:
            state.deleters.add(member)
        self._schedule(state, room)

    def announce(self, member: Member, room: str, handle: str) -> None:
        """The socket goes by ``handle`` in the room's presence from now on."""
        state = self._rooms.get(room)
        if state is None or member not in state.members:
            return
        earlier = state.members[member]
        if earlier == handle:
            return
        if earlier is not None:
            self._forget_handle(state, earlier)
        state.members[member] = handle
        state.handles[handle] += 1
        self._schedule(state, room)

    def leave(self, member: Member, room: str) -> None:
        """Safe to repeat."""
        state = self._rooms.get(room)
        if state is None or member not in state.members:
            return
        handle = state.members.pop(member)
        if handle is not None:
            self._forget_handle(state, handle)
        state.listeners.discard(member)
        state.fresh.discard(member)
        state.typists.discard(member)
        state.deleters.discard(member)
        self._schedule(state, room)

    def typing(self, member: Member, room: str, handle: str) -> None:
        """Tell the room (this process's sockets now, the others through the backend) that ``handle`` types."""
        state = self._rooms.get(room)
        if state is None:
            return
        signal = encode_typing(handle)
        self._metrics.typing_relayed.inc()
        self._queue_typing(state, member, text_frame(signal))
        self._backend.relay(room, signal)

    # -- from other processes (the backend's delivery target) ------------------------------------

    def signal(self, room: str, signal: str) -> None:
        state = self._rooms.get(room)
        if state is not None and state.typists:
            self._queue_typing(state, None, text_frame(signal))

    def presence_changed(self, room: str) -> None:
        state = self._rooms.get(room)
        if state is not None:
            self._schedule(state, room)

    def deleted(self, room: str, message_id: str) -> None:
        """A moderator deleted a message of ``room``: tell the sockets here that asked for ``deletes``."""
        state = self._rooms.get(room)
        if state is None or not state.deleters:
            return
        frame = text_frame(encode_delete(message_id))
        for member in list(state.deleters):
            member.send_frames(frame)

    def before_message(self, member: Member, room: str) -> None:
        """``member`` is posting a message: its typing frame, if held for a batch, goes out first."""
        state = self._rooms.get(room)
        if state is None or state.typing_timer is None:
            return
        if any(typist is member for typist, _ in state.typing_pending):
            state.typing_timer.cancel()
            state.typing_timer = None
            self._send_typing_soon(state)

    # -- typing -----------------------------------------------------------------------------------

    def _queue_typing(self, state: _Room, typist: Member | None, frame: bytes) -> None:
        if not state.typists:
            return
        if not state.typing_pending:
            loop = asyncio.get_running_loop()
            wait = state.typing_sent_at + TYPING_BATCH_SECONDS - loop.time()
            if wait > 0 and not self._closed:
                state.typing_timer = loop.call_later(wait, self._send_held_typing, state)
            else:
                self._send_typing_soon(state)
        state.typing_pending.append((typist, frame))

    def _send_typing_soon(self, state: _Room) -> None:
        if not self._typing_rooms:
            asyncio.get_running_loop().call_soon(self._send_typing)
        self._typing_rooms.append(state)

    def _send_held_typing(self, state: _Room) -> None:
        state.typing_timer = None
        self._send_room_typing(state)

    def _send_typing(self) -> None:
        rooms, self._typing_rooms = self._typing_rooms, []
        for state in rooms:
            self._send_room_typing(state)

    @staticmethod
    def _send_room_typing(state: _Room) -> None:
        pending, state.typing_pending = state.typing_pending, []
        if not pending:
            return
        state.typing_sent_at = asyncio.get_running_loop().time()
        everyone = b"".join(frame for _, frame in pending)
        typists = {typist for typist, _ in pending if typist is not None}
        for member in list(state.typists):
            if member not in typists:
                member.send_frames(everyone)
                continue
            others = b"".join(frame for typist, frame in pending if typist is not member)
            if others:
                member.send_frames(others)

    # -- presence ---------------------------------------------------------------------------------

    @staticmethod
    def _forget_handle(state: _Room, handle: str) -> None:
        left = state.handles[handle] - 1
        if left:
            state.handles[handle] = left
        else:
            del state.handles[handle]

    def _schedule(self, state: _Room, room: str) -> None:
        if self._closed:
            return
        if state.ticking:
            state.again = True
            return
        if state.timer is not None:
            return
        loop = asyncio.get_running_loop()
        delay = max(FIRST_TICK_DELAY, state.last_tick + PRESENCE_INTERVAL - loop.time())
        state.timer = loop.call_later(delay, self._start_tick, state, room)

    def _start_tick(self, state: _Room, room: str) -> None:
        state.timer = None
        state.ticking = True
        task = asyncio.ensure_future(self._tick(state, room))
        self._ticks.add(task)
        task.add_done_callback(self._ticks.discard)

    async def _tick(self, state: _Room, room: str) -> None:
        share = state.share()
        loop = asyncio.get_running_loop()
        try:
            presence = await self._backend.presence(room, share, changed=share != state.recorded)
        except BackendUnavailable as exc:
            log.debug("room %s: presence not recorded, trying again: %s", room, exc)
            state.again = True
            state.last_tick = loop.time() + RETRY_SECONDS - PRESENCE_INTERVAL
        else:
            state.recorded = share
            state.last_tick = loop.time()
            self._send_presence(state, text_frame(encode_presence(presence)))
        finally:
            state.ticking = False
        if state.again:
            state.again = False
            self._schedule(state, room)
        elif not state.members and self._rooms.get(room) is state:
            del self._rooms[room]  # its last socket left and the backend knows: nothing is kept for it

    def _send_presence(self, state: _Room, frame: bytes) -> None:
        if frame != state.last_frame:
            state.last_frame = frame
            receivers = list(state.listeners)
        else:
            receivers = list(state.fresh)
        state.fresh.clear()
        for member in receivers:
            member.send_frames(frame)
        self._metrics.presence_frames.inc(len(receivers))

    def close(self) -> None:
        """Stop ticking (shutdown): the sockets closing now are not worked out one by one; the backend
        drops this process's presence as it closes."""
        self._closed = True
        for state in self._rooms.values():
            if state.timer is not None:
                state.timer.cancel()
                state.timer = None
            if state.typing_timer is not None:
                state.typing_timer.cancel()
                state.typing_timer = None
                state.typing_pending = []
        for task in self._ticks:
            task.cancel()

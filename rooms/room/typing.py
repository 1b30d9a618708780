"""Typing, relayed and never stored: to this process's sockets that asked for it (never to the typist)
and, through the backend, to the other processes.

A room's typing frames go to each socket in one write, at the next loop iteration, or, when the room had
a typing write less than ``TYPING_BATCH_SECONDS`` ago, once that long has passed since: each is a write to
every other socket of the room, so a big room with many typing would otherwise cost as many writes per
socket as typing frames (10% of 500 typing: 25 a second), and now costs at most 10 a second. A quiet
room's typing goes out as soon as before. A socket's held typing frame goes out before its next message
(``before_message``); on another process (Redis) a typing frame held there may follow its typist's
message by up to ``TYPING_BATCH_SECONDS``.
"""

from __future__ import annotations

import asyncio
import math

from backends.base import Backend
from rooms.protocol import Feature, encode_typing, text_frame
from rooms.room.member import Member
from rooms.room.metrics import RoomsMetrics

# A room's typing frames go out at most once per this many seconds (the first at once), in one write per socket.
TYPING_BATCH_SECONDS = 0.1


class _Room:
    __slots__ = ("pending", "sent_at", "timer", "typists")

    def __init__(self) -> None:
        self.typists: set[Member] = set()  # asked for typing
        self.pending: list[tuple[Member | None, bytes]] = []  # (the typist here, or None; its frame)
        self.sent_at = -math.inf  # when typing frames last went out
        self.timer: asyncio.TimerHandle | None = None  # holds pending until a batch is due


class TypingRelay:
    """The typing frames of each room with a socket here that asked for them."""

    def __init__(self, backend: Backend, metrics: RoomsMetrics) -> None:
        self._backend = backend
        self._metrics = metrics
        self._rooms: dict[str, _Room] = {}  # only rooms with a socket that asked for typing
        self._due: list[_Room] = []
        self._closed = False

    def join(self, member: Member, room: str, features: frozenset[Feature]) -> None:
        if Feature.TYPING in features:
            state = self._rooms.get(room)
            if state is None:
                state = self._rooms[room] = _Room()
            state.typists.add(member)

    def leave(self, member: Member, room: str) -> None:
        """Safe to repeat."""
        state = self._rooms.get(room)
        if state is None:
            return
        state.typists.discard(member)
        if not state.typists:
            if state.timer is not None:
                state.timer.cancel()  # what it held was for sockets that have all left
            del self._rooms[room]

    def typing(self, member: Member, room: str, handle: str) -> None:
        """Tell the room (this process's sockets now, the others through the backend) that ``handle`` types."""
        signal = encode_typing(handle)
        self._metrics.typing_relayed.inc()
        self._queue(room, member, text_frame(signal))
        self._backend.relay(room, signal)

    def signal(self, room: str, signal: str) -> None:
        """A typing frame from another process (the backend's delivery target)."""
        self._queue(room, None, text_frame(signal))

    def before_message(self, member: Member, room: str) -> None:
        """``member`` is posting a message: its typing frame, if held for a batch, goes out first."""
        state = self._rooms.get(room)
        if state is None or state.timer is None:
            return
        if any(typist is member for typist, _ in state.pending):
            state.timer.cancel()
            state.timer = None
            self._send_soon(state)

    def _queue(self, room: str, typist: Member | None, frame: bytes) -> None:
        state = self._rooms.get(room)
        if state is None:
            return  # nobody here asked for typing
        if not state.pending:
            loop = asyncio.get_running_loop()
            wait = state.sent_at + TYPING_BATCH_SECONDS - loop.time()
            if wait > 0 and not self._closed:
                state.timer = loop.call_later(wait, self._send_held, state)
            else:
                self._send_soon(state)
        state.pending.append((typist, frame))

    def _send_soon(self, state: _Room) -> None:
        if not self._due:
            asyncio.get_running_loop().call_soon(self._send_due)
        self._due.append(state)

    def _send_held(self, state: _Room) -> None:
        state.timer = None
        self._send(state)

    def _send_due(self) -> None:
        rooms, self._due = self._due, []
        for state in rooms:
            self._send(state)

    @staticmethod
    def _send(state: _Room) -> None:
        pending, state.pending = state.pending, []
        if not pending:
            return
        state.sent_at = asyncio.get_running_loop().time()
        everyone = b"".join(frame for _, frame in pending)
        typists = {typist for typist, _ in pending if typist is not None}
        for member in list(state.typists):
            if member not in typists:
                member.send_frames(everyone, len(pending))
                continue
            others = [frame for typist, frame in pending if typist is not member]
            if others:
                member.send_frames(b"".join(others), len(others))

    def close(self) -> None:
        """Send no more (shutdown): what is held for a batch is dropped."""
        self._closed = True
        for state in self._rooms.values():
            if state.timer is not None:
                state.timer.cancel()
                state.timer = None
                state.pending = []

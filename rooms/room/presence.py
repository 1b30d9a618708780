"""Presence: who is in each room, for the sockets that asked for it.

Presence is counted here for this process's sockets (all of them, whatever they asked for) and combined
across processes by the backend. A room's presence is worked out at most once per ``PRESENCE_INTERVAL``
(docs/protocol.md: at most 2 frames per second per room), however many sockets come and go meanwhile, and a
frame goes out only when it differs from the last one, so a big room with people coming and going costs
a few frames a second. A socket that asked for presence gets the room's presence at the first tick after
it joined, changed or not.

A change goes to every socket that asked at most once per ``broadcast_interval``: half a second, longer in
a room so big that its frames to everyone would pass ``PRESENCE_WRITES_PER_SECOND`` (thousands rejoining
after a restart change the count at every tick). A change held back meanwhile goes out at the first tick
the interval allows, so once the room is quiet every socket has its exact presence.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter

from backends.base import MAX_PRESENCE_HANDLES, Backend, RoomPresence
from backends.errors import BackendUnavailable
from rooms.protocol import Feature, encode_presence, text_frame
from rooms.room.member import Member
from rooms.room.metrics import RoomsMetrics

log = logging.getLogger(__name__)

PRESENCE_INTERVAL = 0.5
# Sockets joining together (a page reloaded by many, a reconnect storm) share one tick.
FIRST_TICK_DELAY = 0.02
# How long a room whose presence the backend could not record waits before trying again.
RETRY_SECONDS = 2.0
# Frames a room's changes of presence may write each second, to all its sockets that asked, on this process.
PRESENCE_WRITES_PER_SECOND = 4000


def broadcast_interval(listeners: int) -> float:
    """Seconds between a room's presence frames to all of its ``listeners``: each change writes one to each."""
    return max(PRESENCE_INTERVAL, listeners / PRESENCE_WRITES_PER_SECOND)


class _Room:
    __slots__ = (
        "again",
        "ahead",
        "fresh",
        "handles",
        "last_broadcast",
        "last_frame",
        "last_tick",
        "listeners",
        "members",
        "recorded",
        "ticking",
        "timer",
    )

    def __init__(self) -> None:
        self.members: dict[Member, str | None] = {}  # every socket here, and the handle it announced
        self.handles: Counter[str] = Counter()
        self.listeners: set[Member] = set()  # asked for presence
        self.fresh: set[Member] = set()  # asked for presence and have not been sent it yet
        # Fresh sockets sent a frame newer than the last that went to all, with the frame each was sent.
        self.ahead: dict[Member, bytes] = {}
        self.recorded: RoomPresence | None = None  # this process's share, as the backend last recorded it
        self.last_frame: bytes | None = None  # the last frame that went to every socket that asked
        self.last_broadcast = -math.inf
        self.last_tick = -math.inf
        self.timer: asyncio.TimerHandle | None = None
        self.ticking = False
        self.again = False  # something changed while a tick was running

    def share(self) -> RoomPresence:
        return RoomPresence(len(self.members), tuple(sorted(self.handles)[:MAX_PRESENCE_HANDLES]))


class LocalPresence:
    """This process's share of each room's presence, and the presence frames of its sockets."""

    def __init__(self, backend: Backend, metrics: RoomsMetrics) -> None:
        self._backend = backend
        self._metrics = metrics
        self._rooms: dict[str, _Room] = {}
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
        state.ahead.pop(member, None)
        self._schedule(state, room)

    def has_room(self, room: str) -> bool:
        """Whether this process still keeps ``room``: a socket of it is here, or left since the last tick."""
        return room in self._rooms

    # -- from other processes (the backend's delivery target) ------------------------------------

    def presence_changed(self, room: str) -> None:
        state = self._rooms.get(room)
        if state is not None:
            self._schedule(state, room)

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
            self._send_presence(state, text_frame(encode_presence(presence)), state.last_tick)
        finally:
            state.ticking = False
        if state.again:
            state.again = False
            self._schedule(state, room)
        elif not state.members and self._rooms.get(room) is state:
            del self._rooms[room]  # its last socket left and the backend knows: nothing is kept for it

    def _send_presence(self, state: _Room, frame: bytes, now: float) -> None:
        if frame == state.last_frame:
            # Unchanged for the room: the fresh sockets get it, and those sent a change since undone get it back.
            receivers = [*state.fresh, *state.ahead]
            state.ahead.clear()
        elif now >= state.last_broadcast + broadcast_interval(len(state.listeners)):
            state.last_frame = frame
            state.last_broadcast = now
            ahead = state.ahead
            # A lookup per listener only when some fresh socket was sent a frame ahead of the others.
            receivers = (
                [member for member in state.listeners if ahead.get(member) != frame] if ahead else [*state.listeners]
            )
            ahead.clear()
        else:
            # Held back from the others until the interval allows; the fresh sockets get it now.
            receivers = list(state.fresh)
            state.ahead.update(dict.fromkeys(receivers, frame))
            state.again = True
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
        for task in self._ticks:
            task.cancel()

    async def wait_closed(self) -> None:
        """Return once the ticks ``close`` cancelled have ended: a tick left suspended in the backend's call
        as the loop stops would be torn down by the garbage collector, in whatever comes next."""
        await asyncio.gather(*self._ticks, return_exceptions=True)

"""WebSocket pings for every socket of the process from one timer, so dead peers are noticed.

Tornado's own pinging (``websocket_ping_interval``) runs a Task per socket, about 1.4 KiB each, which
is most of what a held connection costs beyond the baseline. Here the sockets are dealt into slots and
one timer visits a slot per tick, so each socket is visited once per interval and a server with many
sockets pings a few at a time instead of all in one loop iteration.

A new socket goes into the slot visited last, so its first ping comes one interval after it opened (less
at most a tick), as its own timer's would: a socket that has just answered its handshake is not pinged
at once, and a crowd's joining is not filled with pings and pongs. A slot then holds the sockets that
opened within the same tick, so pings come at the pace the sockets came, an interval later. After a
crowd came, a slot holds thousands: it is visited a batch per turn of the event loop, so what else the
loop has to do (a message to the room, a join) waits for one batch, not for the whole slot.
"""

from __future__ import annotations

from typing import Protocol

from tornado.ioloop import IOLoop, PeriodicCallback

SLOTS = 20
# Sockets visited in one turn of the loop: a few milliseconds of pings.
VISIT_BATCH = 500


class Pingable(Protocol):
    def keepalive_visit(self) -> None:
        """Close if the last ping went unanswered, else send a ping."""


class Keepalive:
    def __init__(self, interval_seconds: float) -> None:
        self._slots: list[set[Pingable]] = [set() for _ in range(SLOTS)]
        self._slot_of: dict[Pingable, set[Pingable]] = {}
        self._turn = 0  # the slot the next tick visits
        self._timer = PeriodicCallback(self.visit_next_slot, interval_seconds * 1000 / SLOTS)

    def add(self, socket: Pingable) -> None:
        slot = self._slots[self._turn - 1]  # visited last, so next visited an interval from now
        slot.add(socket)
        self._slot_of[socket] = slot
        if not self._timer.is_running():
            self._timer.start()

    def discard(self, socket: Pingable) -> None:
        slot = self._slot_of.pop(socket, None)
        if slot is not None:
            slot.discard(socket)
        if not self._slot_of:
            # No timer outlives the last socket (tests start and stop many apps on one process).
            self._timer.stop()
            # Sets and dicts keep the storage of the most they held: a crowd's is let go when it has gone.
            # Cleared, not made anew: new tables would be small blocks in the crowd's arenas, keeping them.
            for slot in self._slots:
                slot.clear()
            self._slot_of.clear()

    @property
    def running(self) -> bool:
        return self._timer.is_running()

    def visit_next_slot(self) -> None:
        """What the timer does each tick: visit the sockets of the next slot."""
        slot = self._slots[self._turn]
        self._turn = (self._turn + 1) % SLOTS
        self._visit(list(slot), 0)  # a visit may close a socket, which leaves the slot

    def _visit(self, sockets: list[Pingable], start: int) -> None:
        end = start + VISIT_BATCH
        for socket in sockets[start:end]:
            if socket in self._slot_of:  # not closed since the slot's visit began
                socket.keepalive_visit()
        if end < len(sockets):
            IOLoop.current().add_callback(self._visit, sockets, end)

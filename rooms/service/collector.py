"""The cycle collector, set for a process that holds many long-lived sockets.

Python runs a full collection, a pass over every object of the process, each time its oldest generation has
grown by a quarter: as a room fills, its sockets trigger pass after pass, each longer than the last (at
19,000 sockets, 16 of them took a fifth of the joins' CPU). A closed socket's objects are freed by
reference counting (tests/app/test_closed_sockets_freed.py), so the collector is left only the cycles
other code makes, which do not grow with the sockets: here full collections run on a timer instead, at
most one every ``FULL_COLLECTION_SECONDS``, and the young generations are collected as before.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

from tornado.ioloop import PeriodicCallback

# The oldest generation's threshold: far beyond what a process reaches between two timed collections,
# so that only the timer starts a full one.
OLDEST_GENERATION_THRESHOLD = 1_000_000
FULL_COLLECTION_SECONDS = 60.0
CHECK_SECONDS = 1.0


def hold_off_full_collections() -> None:
    """Leave full collections to the timer, and everything made so far out of them."""
    # What exists now (modules, classes, templates) lives as long as the process: frozen, it is never
    # scanned again.
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, OLDEST_GENERATION_THRESHOLD)


class MemoryPolicy:
    """Full collections on a timer. ``start`` sets it going on the running loop; ``check`` is what each
    tick does."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last_full = clock()
        self._timer: PeriodicCallback | None = None
        self.full_collections = 0

    def start(self) -> None:
        hold_off_full_collections()
        self._last_full = self._clock()
        self._timer = PeriodicCallback(self.check, CHECK_SECONDS * 1000)
        self._timer.start()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def check(self) -> None:
        """Collect in full if it is time."""
        if self._clock() - self._last_full >= FULL_COLLECTION_SECONDS:
            self._collect()

    def _collect(self) -> None:
        gc.collect()
        self.full_collections += 1
        self._last_full = self._clock()

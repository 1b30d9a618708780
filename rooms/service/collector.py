"""The cycle collector and the C heap, set for a process that holds many long-lived sockets.

Python runs a full collection, a pass over every object of the process, each time its oldest generation has
grown by a quarter: as a room fills, its sockets trigger pass after pass, each longer than the last (at
19,000 sockets, 16 of them took a fifth of the joins' CPU). A closed socket's objects are freed by
reference counting (tests/app/test_closed_sockets_freed.py), so the collector is left only the cycles
other code makes, which do not grow with the sockets: here full collections run on a timer instead, at
most one every ``FULL_COLLECTION_SECONDS``. The middle generation is collected every other time, not
every eleventh: each object that outlives its first collection is looked at once more either way, but
while it is still in the processor's caches, not ten collections later (half the collector's time while a
crowd joins; docs/benchmarks.md, "A join on a 2-core AMD EPYC, ...").

Memory freed when many sockets leave is not given back by itself: glibc keeps the C heap's free pages
(dicts, buffers and other objects over 512 bytes), and Python's allocator keeps each 1 MiB arena of small
objects while any object in it lives. Once the sockets here have fallen by half (and by
``TRIM_AFTER_LEAVING`` at least), and again once the last of a crowd of them has gone, what was kept for
the clients that left is let go (``release``: the room layer's tables of addresses), then a full
collection and glibc's ``malloc_trim(0)`` give the C heap's free pages back; arenas that still hold an
object stay (docs/benchmarks.md, "Closed sockets freed without the cycle collector, and memory after
leaving", and "What survives a crowd"). The trim at the last socket is the one that finds everything of
the crowd freed: the halvings before it come while part of it is still leaving. The event loop's tables of
descriptors (Tornado's handlers, readers and writers, the selector's map) keep the storage of the most
sockets they held, 4 MB at 19,000: they are built anew too (``shrink_loop_tables``). And Python's cache of
attribute lookups by type holds each name it was asked for, among them names that C code made for one call
(``datetime.timetuple`` makes "struct_time" anew each time): up to 4,096 small strings made while the room
was full, one here and one there in the crowd's arenas, which they keep; it is emptied before each trim.
Where the C library is not glibc (musl, macOS) there is no such call and nothing is trimmed.
"""

from __future__ import annotations

import ctypes
import gc
import sys
import time
from collections.abc import Callable

from tornado.ioloop import IOLoop, PeriodicCallback

# The middle generation's threshold: collected whenever a young collection has run since its last one, so
# that what it holds is the last young collection's survivors (Python's default, 10, lets ten pile up).
MIDDLE_GENERATION_THRESHOLD = 0
# The oldest generation's threshold: far beyond what a process reaches between two timed collections,
# so that only the timer starts a full one.
OLDEST_GENERATION_THRESHOLD = 1_000_000
FULL_COLLECTION_SECONDS = 60.0
# Sockets that must have left since the last trim (and half of those there were) before trimming: a
# trim walks the whole heap, worth it only when much was freed.
TRIM_AFTER_LEAVING = 1000
# How often the sockets are counted: a trim follows soon after the leaving that earned it.
CHECK_SECONDS = 0.5


def hold_off_full_collections() -> None:
    """Leave full collections to the timer, and everything made so far out of them."""
    # What exists now (modules, classes, templates) lives as long as the process: frozen, it is never
    # scanned again.
    gc.freeze()
    young, _, _ = gc.get_threshold()
    gc.set_threshold(young, MIDDLE_GENERATION_THRESHOLD, OLDEST_GENERATION_THRESHOLD)


def glibc_malloc_trim() -> Callable[[], int] | None:
    """glibc's ``malloc_trim(0)`` (returns 1 when it gave memory back), or None without glibc."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: int(trim(0))


def shrink_loop_tables(io_loop: IOLoop) -> None:
    """Build ``io_loop``'s tables of descriptors anew, at the size of what they hold now.

    A dict or set keeps the storage of the most it held: after a crowd, 2 MB for Tornado's handlers and
    1.3 MB for the selector's map, live and so never given back by a trim. They are neither's public
    interface, so each is rebuilt only where it is found as expected; the copy holds the same entries."""
    for name in ("handlers", "readers", "writers"):
        table = getattr(io_loop, name, None)
        if isinstance(table, dict | set):
            setattr(io_loop, name, table.copy())
    selector = getattr(getattr(io_loop, "selector_loop", None), "_selector", None)
    by_descriptor = getattr(selector, "_fd_to_key", None)
    if isinstance(by_descriptor, dict):
        # Copied in place: the selector's map view (``get_map``) reads this very dict.
        entries = list(by_descriptor.items())
        by_descriptor.clear()
        by_descriptor.update(entries)


class MemoryPolicy:
    """Full collections on a timer, and memory given back after many sockets have left.

    ``sockets`` counts the process's open sockets; ``trim`` gives free heap memory back (None: nothing to
    call); ``release`` lets go of what the process kept for clients that left, before each trim.
    ``start`` sets it going on the running loop; ``check`` is what each tick does."""

    def __init__(
        self,
        sockets: Callable[[], int],
        trim: Callable[[], int] | None = None,
        clock: Callable[[], float] = time.monotonic,
        release: Callable[[], None] | None = None,
    ) -> None:
        self._sockets = sockets
        self._trim = trim
        self._clock = clock
        self._release = release
        self._most_since_trim = 0
        self._most_since_empty = 0
        self._last_full = clock()
        self._timer: PeriodicCallback | None = None
        self._io_loop: IOLoop | None = None
        self.full_collections = 0
        self.trims = 0

    def start(self) -> None:
        hold_off_full_collections()
        self._last_full = self._clock()
        self._io_loop = IOLoop.current()
        self._timer = PeriodicCallback(self.check, CHECK_SECONDS * 1000)
        self._timer.start()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self._io_loop = None

    def check(self) -> None:
        """Trim if enough sockets left since the last trim; else collect in full if it is time."""
        sockets = self._sockets()
        self._most_since_trim = max(self._most_since_trim, sockets)
        self._most_since_empty = max(self._most_since_empty, sockets)
        left = self._most_since_trim - sockets
        halved = left >= TRIM_AFTER_LEAVING and left * 2 >= self._most_since_trim
        emptied = sockets == 0 and self._most_since_empty >= TRIM_AFTER_LEAVING
        if halved or emptied:
            if self._release is not None:
                self._release()
            if self._io_loop is not None:
                shrink_loop_tables(self._io_loop)
            sys._clear_type_cache()
            self._collect()
            if self._trim is not None:
                self._trim()
                self.trims += 1
            self._most_since_trim = sockets
            if sockets == 0:
                self._most_since_empty = 0
        elif self._clock() - self._last_full >= FULL_COLLECTION_SECONDS:
            self._collect()

    def _collect(self) -> None:
        gc.collect()
        self.full_collections += 1
        self._last_full = self._clock()

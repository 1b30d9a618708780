"""A limit on repeated log lines, so that a flood (a client retrying, a backend failing every request)
cannot fill the disk or bury the line that explains it.

Lines repeat when they share a logger, a level and a message template (``record.msg``, before its
arguments are put in): a few of each per minute pass, the rest are dropped and counted, and once the
minute is over the next line logged says how many were suppressed. The access log's lines of requests
served pass, and so do sockets' ends (one for each socket, as its handshake's access line); its lines of
refused requests (4xx, 5xx) repeat by status.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

LINES_PER_WINDOW = 5
ACCESS_LOG = "tornado.access"
SOCKET_LOG = "rooms.socket"
WINDOW_SECONDS = 60.0

Key = tuple[str, int, str]


@dataclass
class _Window:
    start: float
    passed: int = 0
    dropped: int = 0


class RepeatedLinesFilter(logging.Filter):
    """A filter for a handler that passes at most ``lines`` records of each template per ``seconds``.
    The summary of what it dropped goes to ``handler`` (the one it filters for), like the lines it
    stands for."""

    def __init__(
        self,
        handler: logging.Handler,
        lines: int = LINES_PER_WINDOW,
        seconds: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._handler = handler
        self._lines = lines
        self._seconds = seconds
        self._clock = clock
        self._windows: dict[Key, _Window] = {}
        self._next_expiry = float("inf")
        # Threads (the SQL backend's) log too.
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == SOCKET_LOG and record.levelno < logging.WARNING:
            return True
        if record.name == ACCESS_LOG:
            if record.levelno < logging.WARNING:
                return True  # a request served: as many lines as the limits let requests through
            # Tornado's access lines share one template: refused requests repeat by their status.
            status = record.args[0] if isinstance(record.args, tuple) and record.args else ""
            key = (record.name, record.levelno, f"{record.msg} {status}")
        else:
            key = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        with self._lock:
            expired = self._expire(now) if now >= self._next_expiry else []
            window = self._windows.get(key)
            if window is None:
                window = self._windows[key] = _Window(now)
                self._next_expiry = min(self._next_expiry, now + self._seconds)
            window.passed += 1
            passes = window.passed <= self._lines
            if not passes:
                window.dropped += 1
        for (name, level, template), dropped in expired:
            self._handler.handle(
                logging.LogRecord(
                    name, level, __file__, 0, "suppressed %d more lines like %r", (dropped, template), None
                )
            )
        return passes

    def _expire(self, now: float) -> list[tuple[Key, int]]:
        """Forget the windows that are over; the keys and counts of those that dropped lines."""
        expired = [(key, window) for key, window in self._windows.items() if now - window.start >= self._seconds]
        for key, _ in expired:
            del self._windows[key]
        self._next_expiry = min((w.start + self._seconds for w in self._windows.values()), default=float("inf"))
        return [(key, window.dropped) for key, window in expired if window.dropped]


def limit_repeated_lines(handler: logging.Handler) -> None:
    """Install the limit on ``handler``."""
    handler.addFilter(RepeatedLinesFilter(handler))

"""Accepting connections without spinning when the process runs out of file descriptors.

Tornado's own accept handler (``tornado.netutil.add_accept_handler``) lets ``accept()``'s EMFILE escape:
the listening socket stays readable, so the loop calls the handler again at once, logging a traceback
per try and serving nobody. Here accept stops watching the socket while the process (or the system) is
short of descriptors or buffers and looks again after a pause that grows while it keeps failing; the
connections already open are served all along, and the log hears of it at most once a minute.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Callable
from typing import Any

from tornado.ioloop import IOLoop

log = logging.getLogger(__name__)

# accept() fails with these while descriptors or kernel memory run short; the connection stays in the
# listen queue and is accepted once one is free.
OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
FIRST_PAUSE_SECONDS = 0.1
LONGEST_PAUSE_SECONDS = 1.0
REPORT_EVERY_SECONDS = 60.0
# As Tornado does: at most this many accepts per wake-up, so a burst of connections cannot starve the loop.
ACCEPTS_PER_WAKEUP = 128

OnConnection = Callable[[socket.socket, Any], None]


class Acceptor:
    """Accepts connections on one listening socket and hands each to ``on_connection(sock, address)``."""

    def __init__(self, sock: socket.socket, on_connection: OnConnection) -> None:
        self._sock = sock
        self._on_connection = on_connection
        self._loop = IOLoop.current()
        self._pause = 0.0
        self._resume_timer: object | None = None
        self._last_report: float | None = None
        self._stopped = False
        # What socket.accept() reads from the listening socket for every connection, each made an enum
        # from an int (a microsecond a join); they do not change. The listening socket is non-blocking,
        # so accept() would not make a connection blocking either.
        self._kind = (sock.family, sock.type, sock.proto)
        self._loop.add_handler(sock, self._accept, IOLoop.READ)

    def stop(self) -> None:
        """Stop accepting; safe to call more than once."""
        if self._stopped:
            return
        self._stopped = True
        if self._resume_timer is not None:
            self._loop.remove_timeout(self._resume_timer)
        else:
            self._loop.remove_handler(self._sock)

    def _accept(self, fd: socket.socket, events: int) -> None:
        for _ in range(ACCEPTS_PER_WAKEUP):
            if self._stopped:  # a connection's callback may have stopped the server
                return
            try:
                descriptor, address = self._sock._accept()  # type: ignore[attr-defined]  # accept() less its lookups
            except BlockingIOError:
                return
            except ConnectionAbortedError:  # closed by the peer while still in the listen queue
                continue
            except OSError as exc:
                if exc.errno not in OUT_OF_RESOURCES:
                    raise
                self._pause_after(exc)
                return
            self._pause = 0.0
            self._on_connection(socket.socket(*self._kind, fileno=descriptor), address)

    def _pause_after(self, exc: OSError) -> None:
        self._pause = min(LONGEST_PAUSE_SECONDS, self._pause * 2 or FIRST_PAUSE_SECONDS)
        self._loop.remove_handler(self._sock)
        self._resume_timer = self._loop.call_later(self._pause, self._resume)
        now = self._loop.time()
        if self._last_report is None or now - self._last_report >= REPORT_EVERY_SECONDS:
            self._last_report = now
            log.warning(
                "cannot accept connections on %s: %s; pausing accept while it lasts (said at most once a minute)",
                self._sock.getsockname(),
                exc.strerror,
            )

    def _resume(self) -> None:
        self._resume_timer = None
        self._loop.add_handler(self._sock, self._accept, IOLoop.READ)


def accept_connections(sock: socket.socket, on_connection: OnConnection) -> Callable[[], None]:
    """``tornado.netutil.add_accept_handler`` that pauses while descriptors run out; the callable it
    returns stops accepting."""
    return Acceptor(sock, on_connection).stop

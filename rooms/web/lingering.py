"""Closing a client connection without destroying the answer just sent on it.

A socket closed while the client's bytes still wait unread in it (the rest of a body that was refused,
a pipelined request) makes the kernel send a reset instead of a normal close, and a reset can throw
away the answer the client had not yet read. So the server closes as nginx's "lingering close" does:
it sends what it has, shuts its side (the client reads the answer, then end of stream), and reads and
drops whatever still arrives until the client closes too, for at most ``LINGER_SECONDS``.
"""

from __future__ import annotations

import socket

from tornado.ioloop import IOLoop

LINGER_SECONDS = 5.0
# Reads per wake-up, so that a client sending fast cannot hold the loop.
READS_PER_WAKEUP = 16
_DISCARDED = bytearray(64 * 1024)  # read into and never looked at


def close_gently(sock: socket.socket) -> None:
    """Shut the sending side of ``sock`` (its answer already handed to the kernel), drain it, then
    close it: at the client's end of stream, at an error, or after ``LINGER_SECONDS``."""
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:  # the client has gone already: nothing is left to protect
        sock.close()
        return
    loop = IOLoop.current()

    def close() -> None:
        if sock.fileno() == -1:
            return
        loop.remove_timeout(deadline)
        loop.remove_handler(sock)
        sock.close()

    def drain(fd: object, events: int) -> None:
        try:
            for _ in range(READS_PER_WAKEUP):
                if not sock.recv_into(_DISCARDED):
                    break  # the client closed its side
            else:
                return
        except BlockingIOError:
            return
        except OSError:
            pass
        close()

    deadline = loop.call_later(LINGER_SECONDS, close)
    loop.add_handler(sock, drain, IOLoop.READ)

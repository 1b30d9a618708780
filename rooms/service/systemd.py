"""What systemd hands a service and asks of it: listening sockets (socket activation) and the notify
protocol (``READY=1``, ``WATCHDOG=1``, ``STATUS=``, ``STOPPING=1``), without libsystemd.

Both are plain protocols: sockets arrive as descriptors from 3 on with ``LISTEN_FDS`` (for this process
only when ``LISTEN_PID`` is ours), and a notification is one datagram to ``$NOTIFY_SOCKET`` (an abstract
socket when its name starts with ``@``). Outside systemd neither variable is set and all of this is idle.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, MutableMapping

log = logging.getLogger(__name__)

LISTEN_FDS_START = 3
# Each watchdog period gets this many pings, so one late loop iteration is not yet a missed deadline.
WATCHDOG_PINGS_PER_PERIOD = 3


def listening_sockets(environ: MutableMapping[str, str] | None = None) -> list[socket.socket]:
    """The sockets systemd passed to this process (none outside socket activation). The variables are
    removed, so a child process does not take the sockets for its own."""
    environ = os.environ if environ is None else environ
    count, pid = environ.pop("LISTEN_FDS", ""), environ.pop("LISTEN_PID", "")
    environ.pop("LISTEN_FDNAMES", None)
    if not (count.isdigit() and pid.isdigit()) or int(pid) != os.getpid():
        return []
    sockets = [socket.socket(fileno=fd) for fd in range(LISTEN_FDS_START, LISTEN_FDS_START + int(count))]
    for sock in sockets:
        sock.setblocking(False)
        os.set_inheritable(sock.fileno(), False)
    return sockets


class Notifier:
    """Tells systemd how the service is doing; every call is a no-op without ``$NOTIFY_SOCKET``."""

    def __init__(self, environ: MutableMapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        address = environ.pop("NOTIFY_SOCKET", "")
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._socket: socket.socket | None = None
        if self._address:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        usec, pid = environ.pop("WATCHDOG_USEC", ""), environ.pop("WATCHDOG_PID", "")
        watched = usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid()))
        self.watchdog_seconds = int(usec) / 1_000_000 if watched else 0.0
        self._watchdog: asyncio.Task[None] | None = None

    def notify(self, *fields: str) -> None:
        if self._socket is None:
            return
        try:
            self._socket.sendto("\n".join(fields).encode(), self._address)
        except OSError as exc:  # systemd gone or the socket full: the service itself carries on
            log.debug("notify to systemd failed: %s", exc)

    def ready(self, status: str) -> None:
        self.notify("READY=1", f"STATUS={status}")

    def stopping(self) -> None:
        self.notify("STOPPING=1", "STATUS=shutting down")
        if self._watchdog is not None:
            self._watchdog.cancel()

    def start_watchdog(self, status: Callable[[], str]) -> None:
        """Ping the watchdog from the event loop itself, so a stuck loop misses it and is restarted; each
        ping carries a fresh ``STATUS=``."""
        if self._socket is not None and self.watchdog_seconds and self._watchdog is None:
            self._watchdog = asyncio.create_task(self._keep_alive(status), name="systemd-watchdog")

    async def _keep_alive(self, status: Callable[[], str]) -> None:
        while True:
            self.notify("WATCHDOG=1", f"STATUS={status()}")
            await asyncio.sleep(self.watchdog_seconds / WATCHDOG_PINGS_PER_PERIOD)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

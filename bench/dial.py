"""Connecting the load's clients with the work of each try done once, not per try.

picows's ``ws_connect`` left to itself hands the host to the event loop, whose ``sock_connect`` (uvloop's)
looks the address up with ``getaddrinfo`` on a worker thread at every try, and builds a logger of its own
for every connection. With 19,000 pages trying again and again (``bench.restart``) that is tens of thousands
of look-ups of an address known from the start. A ``Dialer`` looks its server's address up once, binds each
socket to its client's loopback source (``bench.sources``), connects it on the event loop itself, and hands
the connected socket to ``ws_connect`` (its ``socket_factory``), which then sends the same handshake as
before; the connection's log lines go to picows's one client logger.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from urllib.parse import urlsplit

from picows import WSListener, ws_connect

from bench.sources import local_addr, source_address

# A LoggerAdapter, not a Logger: picows then logs through it instead of making a child Logger per socket.
PICOWS_LOGGER = logging.LoggerAdapter(logging.getLogger("picows.client"))


def _writable(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Dialer:
    """Opens WebSocket connections to the server of ``url`` (any path and query), client ``index`` from its
    loopback source of ``sources``, each handshake given up after ``handshake_timeout`` seconds."""

    def __init__(self, url: str, sources: int, handshake_timeout: float) -> None:
        parts = urlsplit(url)
        family, _, _, _, address = socket.getaddrinfo(parts.hostname, parts.port or 80, type=socket.SOCK_STREAM)[0]
        self.family = family
        self.address = address
        self.sources = sources
        self.spread = local_addr(url, 0, sources) is not None
        self.handshake_timeout = handshake_timeout

    async def connect(self, listener: WSListener, url: str, index: int) -> None:
        """Connect ``listener`` to ``url``; raises as ``ws_connect`` does (``ConnectionRefusedError``, a timeout)."""

        async def connected_socket(_parsed: object) -> socket.socket:
            return await self.socket(index)

        await ws_connect(
            lambda: listener,
            url,
            websocket_handshake_timeout=self.handshake_timeout,
            read_buffer_init_size=4096,
            enable_auto_pong=True,
            logger_name=PICOWS_LOGGER,
            socket_factory=connected_socket,
        )

    async def socket(self, index: int) -> socket.socket:
        """A socket connected to the server from client ``index``'s source address."""
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            if self.spread:
                sock.bind((source_address(index, self.sources), 0))
            error = sock.connect_ex(self.address)
            if error == errno.EINPROGRESS:
                loop = asyncio.get_running_loop()
                writable: asyncio.Future[None] = loop.create_future()
                descriptor = sock.fileno()
                loop.add_writer(descriptor, _writable, writable)
                try:
                    await writable
                finally:
                    loop.remove_writer(descriptor)
                error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error:
                # OSError picks the subclass by errno: ConnectionRefusedError while nothing listens.
                raise OSError(error, f"Connect call failed {self.address}")
        except BaseException:
            sock.close()
            raise
        return sock

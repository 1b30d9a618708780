"""A connection's first request head, read by the server before any of Tornado's HTTP code sees it.

Most connections to rooms are WebSockets, and each makes one request, its handshake: Tornado's HTTP/1
connection (a Task reading under a timeout, the request's objects, the handler with its default headers,
transforms and ``finish``) cost most of a join's CPU. So the server reads the first head itself, with a
callback, under the header deadline and within ``MAX_HEADER_BYTES`` (``RequestStream`` answers 431), and
offers it to a ``HeadRoute`` (``rooms.web.chat_handshake``). What the route does not take is put back in
front of whatever followed it, and the connection is Tornado's, which reads that head as if it had
been the first to: every other request, and every later request of a kept-alive connection, is served
as it always was.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from tornado.ioloop import IOLoop
from tornado.iostream import StreamClosedError

from rooms.web.request_head import RequestHead, parse_head

if TYPE_CHECKING:
    from rooms.web.httpserver import RequestStream

# As Tornado's HTTP/1 connection reads a head: up to the first empty line, CRLF or bare LF.
END_OF_HEAD = b"\r?\n\r?\n"


class HeadRoute(Protocol):
    def serve(self, stream: RequestStream, head: RequestHead, peer: str, to_http: Callable[[], None]) -> bool:
        """Take the request of ``head``, whose ``stream`` is then the route's; False leaves it to Tornado.
        A route that answers without taking the connection over calls ``to_http`` once it has: the
        connection's next request is Tornado's."""


class FirstRequest:
    """One connection until its first head is read: then the route's, or Tornado's (``to_tornado``)."""

    __slots__ = ("_address", "_route", "_stream", "_timer", "_to_tornado", "_unread")

    def __init__(
        self,
        stream: RequestStream,
        address: Any,
        route: HeadRoute,
        to_tornado: Callable[[RequestStream, Any, bool], None],
        header_seconds: float,
        max_header_bytes: int,
        unread: set[FirstRequest],
    ) -> None:
        self._stream = stream
        self._address = address
        self._route = route
        self._to_tornado = to_tornado
        self._unread = unread  # the server's, so that closing every connection closes these too
        unread.add(self)
        # As Tornado's first-request deadline: the connection is closed, without an answer.
        self._timer = IOLoop.current().call_later(header_seconds, self.close)
        try:
            head = stream.read_until_regex(END_OF_HEAD, max_bytes=max_header_bytes)
        except StreamClosedError:
            self._done()
            return
        # An IOStream's read returns an asyncio Future (its annotation says Awaitable).
        assert isinstance(head, asyncio.Future)
        head.add_done_callback(self._read)

    def close(self) -> None:
        self._done()
        self._stream.close()

    def _done(self) -> None:
        IOLoop.current().remove_timeout(self._timer)
        self._unread.discard(self)

    def _read(self, future: asyncio.Future[bytes]) -> None:
        self._done()
        try:
            data = future.result()
        except StreamClosedError:  # closed: by the peer, the deadline, or a head too large (431 answered)
            return
        stream = self._stream
        if stream.closed():
            return
        head = parse_head(data)
        if head is not None and self._route.serve(stream, head, self._peer(), self._served):
            return
        stream.unread(data)
        self._to_tornado(stream, self._address, True)

    def _served(self) -> None:
        self._to_tornado(self._stream, self._address, False)

    def _peer(self) -> str:
        # What Tornado's request context calls the remote IP.
        if self._stream.socket.family in (socket.AF_INET, socket.AF_INET6):
            return str(self._address[0])
        return "0.0.0.0"

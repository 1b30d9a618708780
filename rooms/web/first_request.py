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
import functools
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from tornado.ioloop import IOLoop
from tornado.iostream import StreamClosedError

from rooms.web.request_head import END_OF_HEAD, RequestHead, parse_head

if TYPE_CHECKING:
    from rooms.web.request_stream import RequestStream


class HeadRoute(Protocol):
    def serve(self, stream: RequestStream, head: RequestHead, peer: str, to_http: Callable[[], None]) -> bool:
        """Take the request of ``head``, whose ``stream`` is then the route's; False leaves it to Tornado.
        A route that answers without taking the connection over calls ``to_http`` once it has: the
        connection's next request is Tornado's."""


class _NoRoute:
    """The route of a stopping server, which takes no request."""

    def serve(self, stream: RequestStream, head: RequestHead, peer: str, to_http: Callable[[], None]) -> bool:
        return False


_NO_ROUTE = _NoRoute()


class FirstHeads:
    """Reads the first head of each of a server's connections and offers it to ``route``; what the route
    does not take, and every request after it, is Tornado's (``to_tornado``). A connection whose first
    head has not come within ``header_seconds`` of its accept is closed without an answer, as Tornado's
    first-request deadline closes it.

    One timer keeps every connection's deadline, not one per connection (a timer costs a join more than
    its head's parse): each deadline is its accept's time plus the same span, so the connections wait in
    the order they were accepted, and the first still unread is the next to expire."""

    def __init__(
        self,
        route: HeadRoute,
        to_tornado: Callable[[RequestStream, Any, bool], None],
        header_seconds: float,
        max_header_bytes: int,
    ) -> None:
        self.route = route
        self.to_tornado = to_tornado
        self._header_seconds = header_seconds
        self.max_header_bytes = max_header_bytes
        self._waiting: deque[FirstRequest] = deque()  # by deadline; the read ones at the front let go
        self._timer: object | None = None

    def read(self, stream: RequestStream, address: Any) -> None:
        loop = IOLoop.current()
        request = FirstRequest(self, stream, address, loop.time() + self._header_seconds)
        waiting = self._waiting
        while waiting and waiting[0].stream is None:
            waiting.popleft()
        waiting.append(request)
        if self._timer is None:
            self._timer = loop.call_at(request.deadline, self._expire)
        request.begin()

    def stop(self) -> None:
        """The server is stopping: every head that comes from now on is Tornado's (which answers it, then
        closes its connection), none is taken over by the route."""
        self.route = _NO_ROUTE

    def reading(self) -> bool:
        """Whether a connection's first head is still awaited."""
        return any(request.stream is not None for request in self._waiting)

    def close_all(self) -> None:
        """Close every connection whose first head is still unread."""
        for request in list(self._waiting):
            request.close()

    def _expire(self) -> None:
        loop = IOLoop.current()
        self._timer = None
        now = loop.time()
        waiting = self._waiting
        while waiting:
            request = waiting[0]
            if request.stream is not None:
                if request.deadline > now:
                    self._timer = loop.call_at(request.deadline, self._expire)
                    return
                request.close()
            waiting.popleft()


class FirstRequest:
    """One connection until its first head is read: then the route's, or Tornado's."""

    __slots__ = ("_address", "_heads", "deadline", "stream")

    def __init__(self, heads: FirstHeads, stream: RequestStream, address: Any, deadline: float) -> None:
        self._heads = heads
        self.stream: RequestStream | None = stream  # until its head is read, or it is closed
        self._address = address
        self.deadline = deadline  # the loop's time at which it is closed if its head is still unread

    def begin(self) -> None:
        assert self.stream is not None  # just accepted
        # Waited for, not tried for at once: a connection is accepted as soon as it is made, and its head
        # (sent once the client sees it made) has often not come yet.
        self.stream.read_when_readable()
        try:
            head = self.stream.read_until_regex(END_OF_HEAD, max_bytes=self._heads.max_header_bytes)
        except StreamClosedError:
            self.stream = None
            return
        # An IOStream's read returns an asyncio Future (its annotation says Awaitable).
        assert isinstance(head, asyncio.Future)
        head.add_done_callback(self._read)

    def close(self) -> None:
        stream, self.stream = self.stream, None
        if stream is not None:
            stream.close()

    def _read(self, future: asyncio.Future[bytes]) -> None:
        stream, self.stream = self.stream, None
        # Asked, not raised: closed by the peer, the deadline, or a head too large (431 answered).
        if future.exception() is not None or stream is None or stream.closed():
            return
        data = future.result()
        heads = self._heads
        head = parse_head(data)
        address = self._address
        if head is not None and heads.route.serve(
            stream, head, _peer(stream, address), functools.partial(heads.to_tornado, stream, address, False)
        ):
            return
        stream.unread(data)
        heads.to_tornado(stream, address, True)


def _peer(stream: RequestStream, address: Any) -> str:
    # What Tornado's request context calls the remote IP.
    if stream.tcp:
        return str(address[0])
    return "0.0.0.0"

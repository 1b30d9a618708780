"""The HTTP server in front of the application: how much a request may send, and how slowly.

A slow client holds a descriptor and a buffer for as long as it likes unless something stops it, so the
headers of a connection's first request must arrive within ``HEADER_SECONDS`` of the accept, a body within
``BODY_SECONDS``, and a kept-alive connection may sit idle ``IDLE_SECONDS`` before its next request.
Tornado has one timeout for "waiting for headers", which is also its idle timeout; here the first
request gets the short one and later ones the idle one, which then bounds their idle time and their
headers together. None of these apply to a WebSocket once its handshake is done (Tornado hands the
socket over, and the pings of ``server.ping_interval`` keep watch over it).

A request's body may hold at most ``limits.max_frame_bytes`` on every route (``BodyLimit``): a bigger one
is answered 413 before it is read, and nothing buffers more. The application sees a request only once
its body is read whole, so a body within the limit is read even when the answer refuses it, and the
connection stays usable. Where the server closes a connection after an answer, it closes gently
(``rooms.web.lingering``), never with a reset that could destroy the answer.

A server that stops (``RoomsHTTPServer.stop``, then ``drain``) accepts nothing more, but answers every
request on its way: the head of a connection it accepted is still awaited, for a second at most; each
request is answered as always but with ``Connection: close``, except a WebSocket's handshake, which is not
opened into a room that is closing (503, and its client connects again, to the next process); a request
under way is finished; a kept-alive connection is closed once it is between requests.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import json
import logging
import socket
import sys
import time
import weakref
from asyncio import Future
from collections.abc import Awaitable, Iterable
from typing import Any

import tornado.httpserver
import tornado.httputil
from tornado.http1connection import HTTP1Connection, HTTP1ServerConnection
from tornado.ioloop import IOLoop
from tornado.log import access_log

from rooms.web.first_request import FirstHeads, HeadRoute
from rooms.web.listener import accept_connections
from rooms.web.request_stream import FIRST_READ_CHUNK_BYTES, READ_CHUNK_BYTES, RequestStream

MAX_HEADER_BYTES = 8 * 1024
HEADER_SECONDS = 10.0
BODY_SECONDS = 30.0
IDLE_SECONDS = 60.0
# How often a stopping server looks for the connections it may close, and whether any is left.
DRAIN_POLL_SECONDS = 0.05
# How long a stopping server awaits the first heads of connections it accepted: a client sends its head as it
# connects, and one that has not (a browser's connection opened ahead of need) must not hold a restart.
FIRST_HEADS_AT_STOP_SECONDS = 1.0
SHUTTING_DOWN = "the server is shutting down; connect again in a moment"


class BodyLimit(tornado.httputil.HTTPMessageDelegate):
    """One request on its way to the application, which sees it only once its body is read whole.

    A body over ``limit`` bytes is refused with 413: at once when its ``Content-Length`` says so (no byte
    of it is read, no route looked up, and the connection is closed gently), else (a chunked body) as
    soon as more than ``limit`` bytes have come. A body within the limit is read before any handler
    runs, so no handler can answer before it (a 404, a 401, a 415): the body is never left unread, and
    the connection stays usable for the next request."""

    def __init__(
        self, delegate: tornado.httputil.HTTPMessageDelegate, connection: HTTP1Connection, server: RoomsHTTPServer
    ) -> None:
        self._delegate = delegate
        self._connection = connection
        self._server = server
        self._limit = server.max_body_bytes
        self._body: bytearray | None = None  # while a body is read, what has come of it
        self._forwarded = False  # whether the application has the request

    def headers_received(
        self,
        start_line: tornado.httputil.RequestStartLine | tornado.httputil.ResponseStartLine,
        headers: tornado.httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        assert isinstance(start_line, tornado.httputil.RequestStartLine)  # a server reads requests
        self._start_line, self._headers = start_line, headers
        self._started = time.monotonic()
        if _over(headers.get("Content-Length", ""), self._limit):
            self._answer_and_close(*self._too_large())
            return None
        if self._server.stopping and headers.get("Upgrade", "").lower() == "websocket":
            # Not opened into a room that is closing: the client connects again, to the next process.
            self._answer_and_close(*self._refusal(503, "Service Unavailable", SHUTTING_DOWN, {"Retry-After": "1"}))
            return None
        if "Content-Length" in headers or "Transfer-Encoding" in headers:
            self._body = bytearray()
            return None
        self._forwarded = True
        return self._delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        assert self._body is not None  # Tornado reads a body only where its headers announce one
        if len(self._body) + len(chunk) > self._limit:  # a chunked body, which announced no length
            self._connection.write_headers(*self._too_large())
            self._connection.finish()  # and, as the body was not all read, closes the connection gently
        else:
            self._body += chunk
        return None

    def finish(self) -> None:
        if self._body is None:
            self._delegate.finish()
        else:
            IOLoop.current().add_future(asyncio.ensure_future(self._forward(bytes(self._body))), _raise_error)
            self._body = None

    def on_connection_close(self) -> None:
        if self._forwarded:
            self._delegate.on_connection_close()

    async def _forward(self, body: bytes) -> None:
        """Hand the request to the application, as Tornado would have as it read it."""
        self._forwarded = True
        prepared = self._delegate.headers_received(self._start_line, self._headers)
        if prepared is not None:  # a handler that streams its body: prepared to receive it
            await prepared
        if body:
            received = self._delegate.data_received(body)
            if received is not None:
                await received
        self._delegate.finish()

    def _answer_and_close(
        self, status: tornado.httputil.ResponseStartLine, headers: tornado.httputil.HTTPHeaders, body: bytes
    ) -> None:
        # Detached, so that Tornado reads no byte of a body; the stream is closed here instead.
        stream = self._connection.detach()
        assert isinstance(stream, RequestStream)  # the server accepts into RequestStreams
        lines = [f"HTTP/1.1 {status.code} {status.reason}", *(f"{k}: {v}" for k, v in headers.get_all())]
        stream.answer_and_close(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def _too_large(self) -> tuple[tornado.httputil.ResponseStartLine, tornado.httputil.HTTPHeaders, bytes]:
        return self._refusal(413, "Content Too Large", f"request body too large: over {self._limit} bytes")

    def _refusal(
        self, code: int, reason: str, error: str, more_headers: dict[str, str] | None = None
    ) -> tuple[tornado.httputil.ResponseStartLine, tornado.httputil.HTTPHeaders, bytes]:
        """An answer of the server's own, ``{"error": ...}``, logged as the access log logs the answers of the
        application."""
        context = self._connection.context
        summary = f"{self._start_line.method} {self._start_line.path} ({getattr(context, 'remote_ip', '')})"
        level = logging.WARNING if code < 500 else logging.ERROR
        access_log.log(level, "%d %s %.2fms", code, summary, 1000.0 * (time.monotonic() - self._started))
        body = json.dumps({"error": error}).encode()
        headers = tornado.httputil.HTTPHeaders(
            {
                "Content-Type": "application/json; charset=utf-8",
                "Content-Length": str(len(body)),
                "Connection": "close",
                "X-Content-Type-Options": "nosniff",
                **(more_headers or {}),
            }
        )
        return tornado.httputil.ResponseStartLine("HTTP/1.1", code, reason), headers, body


def _raise_error(future: Future[None]) -> None:
    future.result()  # an error the application let out: the IOLoop logs it


def _over(content_length: str, limit: int) -> bool:
    """Whether a ``Content-Length`` announces more than ``limit`` bytes; one that is not a number is
    Tornado's to refuse (400). Compared as text first: ``int()`` refuses numbers of over 4300 digits."""
    digits = content_length.strip().lstrip("0")
    if not (digits.isascii() and digits.isdigit()):
        return False
    return len(digits) > len(str(limit)) or int(digits) > limit


class RoomsHTTPServer(tornado.httpserver.HTTPServer):
    """Plain HTTP (TLS is the reverse proxy's), accepting through ``rooms.web.listener``, with the first
    request of each connection under its own header deadline and every body under ``max_body_bytes``.
    With a ``head_route``, each connection's first head is offered to it first (``rooms.web.first_request``)."""

    def initialize(  # type: ignore[override]
        self,
        request_callback: tornado.httputil.HTTPServerConnectionDelegate,
        max_body_bytes: int,
        header_seconds: float = HEADER_SECONDS,
        body_seconds: float = BODY_SECONDS,
        idle_seconds: float = IDLE_SECONDS,
        head_route: HeadRoute | None = None,
    ) -> None:
        super().initialize(
            request_callback,
            max_header_size=MAX_HEADER_BYTES,
            idle_connection_timeout=idle_seconds,
            body_timeout=body_seconds,
            # BodyLimit holds bodies to max_body_bytes; Tornado's own limit would answer a bare 400 (and
            # for a chunked body, on a chunk's announced size, before BodyLimit could answer 413).
            max_body_size=sys.maxsize,
        )
        self.max_body_bytes = max_body_bytes
        self.stopping = False
        self._first_request_params = copy.copy(self.conn_params)
        self._first_request_params.header_timeout = header_seconds
        self._served: weakref.WeakSet[object] = weakref.WeakSet()
        self._first_heads = (
            None if head_route is None else FirstHeads(head_route, self._serve, header_seconds, MAX_HEADER_BYTES)
        )

    def add_sockets(self, sockets: Iterable[socket.socket]) -> None:
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            tcp = sock.family in (socket.AF_INET, socket.AF_INET6)
            self._handlers[sock.fileno()] = accept_connections(sock, functools.partial(self._on_accepted, tcp))

    def _on_accepted(self, tcp: bool, connection: socket.socket, address: Any) -> None:
        chunk = READ_CHUNK_BYTES if self._first_heads is None else FIRST_READ_CHUNK_BYTES
        stream = RequestStream(connection, tcp=tcp, max_buffer_size=self.max_buffer_size, read_chunk_size=chunk)
        if self._first_heads is None:
            self.handle_stream(stream, address)
        else:
            self._first_heads.read(stream, address)

    def _serve(self, stream: RequestStream, address: Any, first: bool) -> None:
        """Tornado's HTTP/1 connection serves ``stream`` from here on, from its ``first`` request or a later one."""
        stream.read_in_full_chunks()
        context = tornado.httpserver._HTTPRequestContext(stream, address, self.protocol, self.trusted_downstream)
        connection = HTTP1ServerConnection(stream, self.conn_params, context)
        if not first:  # its next request is a kept-alive connection's: the idle deadline, not the first's
            self._served.add(connection)
        self._connections.add(connection)
        connection.start_serving(self)

    def stop(self) -> None:
        """Stop accepting connections; those accepted are still answered (``drain``)."""
        super().stop()
        self.stopping = True
        # Each request whose head comes from now on is its connection's last (Connection: close).
        self.conn_params.no_keep_alive = True
        self._first_request_params.no_keep_alive = True
        if self._first_heads is not None:
            self._first_heads.stop()

    async def drain(self, deadline: float) -> None:
        """After ``stop``: answer the requests on their way until ``deadline`` (the asyncio loop's time) at
        the latest (the first head of a connection accepted is awaited ``FIRST_HEADS_AT_STOP_SECONDS`` at most; a
        kept-alive connection is closed once it is between requests), then close every connection left."""
        loop = asyncio.get_running_loop()
        heads_deadline = loop.time() + FIRST_HEADS_AT_STOP_SECONDS
        while loop.time() < deadline:
            for connection in list(self._connections):
                if self._between_requests(connection):
                    connection.stream.close()
            reading = self._first_heads is not None and self._first_heads.reading() and loop.time() < heads_deadline
            if not self._connections and not reading:
                break
            await asyncio.sleep(min(DRAIN_POLL_SECONDS, deadline - loop.time()))
        await self.close_all_connections()

    def _between_requests(self, connection: HTTP1ServerConnection) -> bool:
        """Whether ``connection`` waits for a later request of which nothing has come: closing it then loses
        nothing (a request the client sends as it closes is the client's to send again, as HTTP has it)."""
        stream = connection.stream
        assert isinstance(stream, RequestStream)  # the server accepts into RequestStreams
        request = stream.current_request()
        return (
            request is not None
            and request.params is not self._first_request_params  # a first request is awaited
            and request._request_start_line is None  # its head not read yet
            and not stream.closed()
            and not stream.holds_unread_bytes()
        )

    async def close_all_connections(self) -> None:
        if self._first_heads is not None:
            self._first_heads.close_all()
        await super().close_all_connections()

    def start_request(
        self, server_conn: object, request_conn: tornado.httputil.HTTPConnection
    ) -> tornado.httputil.HTTPMessageDelegate:
        assert isinstance(request_conn, HTTP1Connection)  # the only kind this server makes
        # Called before each request's headers are read, so its params still decide their deadline.
        if server_conn not in self._served:
            self._served.add(server_conn)
            request_conn.params = self._first_request_params
        if isinstance(request_conn.stream, RequestStream):
            request_conn.stream.begin_request(request_conn)
        return BodyLimit(super().start_request(server_conn, request_conn), request_conn, self)


def make_http_server(
    app: tornado.httputil.HTTPServerConnectionDelegate,
    *,
    max_body_bytes: int,
    header_seconds: float = HEADER_SECONDS,
    body_seconds: float = BODY_SECONDS,
    idle_seconds: float = IDLE_SECONDS,
) -> RoomsHTTPServer:
    """The server ``server.py`` listens with (and the tests serve the app with), its bodies held to
    ``max_body_bytes`` (``limits.max_frame_bytes``), and its first heads offered to the app's ``head_route``
    if it has one; the timeouts are parameters so tests can shorten them."""
    return RoomsHTTPServer(
        app,
        max_body_bytes=max_body_bytes,
        header_seconds=header_seconds,
        body_seconds=body_seconds,
        idle_seconds=idle_seconds,
        head_route=getattr(app, "head_route", None),
    )

"""The HTTP server in front of the application: how much a request may send, and how slowly.

A slow client holds a descriptor and a buffer for as long as it likes unless something stops it, so the
headers of a connection's first request must arrive within ``HEADER_SECONDS`` of the accept, a body within
``BODY_SECONDS``, and a kept-alive connection may sit idle ``IDLE_SECONDS`` before its next request.
Tornado has one timeout for "waiting for headers", which is also its idle timeout; here the first
request gets the short one and later ones the idle one, which then bounds their idle time and their
headers together. None of these apply to a WebSocket once its handshake is done (Tornado hands the
socket over, and the pings of ``server.ping_interval`` keep watch over it).
"""

from __future__ import annotations

import copy
import socket
import weakref
from collections.abc import Awaitable, Iterable
from typing import Any

import tornado.httpserver
import tornado.httputil
from tornado.http1connection import HTTP1Connection
from tornado.iostream import IOStream, UnsatisfiableReadError

from rooms.listener import accept_connections

MAX_HEADER_BYTES = 8 * 1024
HEADER_SECONDS = 10.0
BODY_SECONDS = 30.0
IDLE_SECONDS = 60.0

HEADERS_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"Connection: close\r\nContent-Length: 0\r\nX-Content-Type-Options: nosniff\r\n\r\n"
)


class RequestStream(IOStream):
    """A client connection that answers 431 when its request's headers are too large.

    Tornado enforces ``max_header_size`` inside the stream: the read that finds no end of headers within
    the limit closes the stream itself, before any of Tornado's HTTP code can answer, so the client would
    see only a closed connection. The answer is written here, as that read closes the stream."""

    _reading_headers = False

    def read_until_regex(self, regex: bytes, max_bytes: int | None = None) -> Awaitable[bytes]:
        # HTTP1Connection reads a request's headers, and only those, with read_until_regex.
        self._reading_headers = True
        return super().read_until_regex(regex, max_bytes)

    def read_until(self, delimiter: bytes, max_bytes: int | None = None) -> Awaitable[bytes]:
        self._reading_headers = False  # a chunk-size line, whose overflow is not a header's
        return super().read_until(delimiter, max_bytes)

    def close(self, exc_info: Any = False) -> None:
        if isinstance(exc_info, UnsatisfiableReadError) and self._reading_headers and not self.closed():
            self.write(HEADERS_TOO_LARGE)
        super().close(exc_info)


class RoomsHTTPServer(tornado.httpserver.HTTPServer):
    """Plain HTTP (TLS is the reverse proxy's), accepting through ``rooms.listener``, with the first
    request of each connection under its own header deadline."""

    def initialize(  # type: ignore[override]
        self,
        request_callback: tornado.httputil.HTTPServerConnectionDelegate,
        header_seconds: float = HEADER_SECONDS,
        body_seconds: float = BODY_SECONDS,
        idle_seconds: float = IDLE_SECONDS,
    ) -> None:
        super().initialize(
            request_callback,
            max_header_size=MAX_HEADER_BYTES,
            idle_connection_timeout=idle_seconds,
            body_timeout=body_seconds,
        )
        self._first_request_params = copy.copy(self.conn_params)
        self._first_request_params.header_timeout = header_seconds
        self._served: weakref.WeakSet[object] = weakref.WeakSet()

    def add_sockets(self, sockets: Iterable[socket.socket]) -> None:
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            self._handlers[sock.fileno()] = accept_connections(sock, self._on_accepted)

    def _on_accepted(self, connection: socket.socket, address: Any) -> None:
        stream = RequestStream(connection, max_buffer_size=self.max_buffer_size, read_chunk_size=self.read_chunk_size)
        self.handle_stream(stream, address)

    def start_request(
        self, server_conn: object, request_conn: tornado.httputil.HTTPConnection
    ) -> tornado.httputil.HTTPMessageDelegate:
        # Called before each request's headers are read, so its params still decide their deadline.
        if isinstance(request_conn, HTTP1Connection) and server_conn not in self._served:
            self._served.add(server_conn)
            request_conn.params = self._first_request_params
        return super().start_request(server_conn, request_conn)


def make_http_server(
    app: tornado.httputil.HTTPServerConnectionDelegate,
    *,
    header_seconds: float = HEADER_SECONDS,
    body_seconds: float = BODY_SECONDS,
    idle_seconds: float = IDLE_SECONDS,
) -> RoomsHTTPServer:
    """The server ``server.py`` listens with (and the tests serve the app with); the timeouts are
    parameters so tests can shorten them."""
    return RoomsHTTPServer(app, header_seconds=header_seconds, body_seconds=body_seconds, idle_seconds=idle_seconds)

"""The HTTP server in front of the application."""

from __future__ import annotations

import socket
from collections.abc import Iterable

import tornado.httpserver
import tornado.httputil

from rooms.listener import accept_connections


class RoomsHTTPServer(tornado.httpserver.HTTPServer):
    """Tornado's HTTP server, accepting through ``rooms.listener``."""

    def add_sockets(self, sockets: Iterable[socket.socket]) -> None:
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            self._handlers[sock.fileno()] = accept_connections(sock, self._handle_connection)


def make_http_server(app: tornado.httputil.HTTPServerConnectionDelegate) -> RoomsHTTPServer:
    """The server ``server.py`` listens with (and the tests serve the app with)."""
    return RoomsHTTPServer(app)

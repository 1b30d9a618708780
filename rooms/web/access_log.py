"""One line for every HTTP request answered (the access log), and its count and duration in the metrics.

The line's fields (``extra``, so JSON shows them as keys): ``method``, ``path`` (the request target with
its credentials masked), ``status``, ``duration_ms``, ``bytes`` (of the body sent, compressed if it was),
``client`` (the address rooms resolved, past trusted proxies) and ``user_agent``. The text line shows them
all too. The metrics count each request by its route's pattern (``/api/rooms/{label}/messages``), never
its path, which would give every room, message and mistyped URL a series of its own.
"""

from __future__ import annotations

import logging

from prometheus_client import Histogram
from tornado.httputil import HTTPHeaders
from tornado.web import OutputTransform, RequestHandler

from rooms.room.metrics import RoomsMetrics
from rooms.service.logmask import escape_controls_in, mask_credentials_in

ACCESS_LOG = logging.getLogger("tornado.access")  # Tornado's own name for it, which operators know
ACCESS_LINE = '%d %s %s (%s) %.2fms %d bytes "%s"'
STATIC_PREFIX = "/static/"
STATIC_ROUTE = "/static/{path}"
TOP_FILES = ("/favicon.ico", "/robots.txt")
NO_ROUTE = "(none)"
# A client may send any method name; only these get a series of their own.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "(other)"

# Each series a request is counted in, by route, method and status: ``labels()`` turns its arguments into
# a tuple and takes a lock at every call, so each series is looked up once and kept here.
_Children = dict[str, dict[str, dict[int, Histogram]]]


class BytesSent(OutputTransform):
    """The last of a response's transforms: counts its body's bytes as they go out, compressed if they are
    (a streamed answer, such as a static file, has no Content-Length to read them from)."""

    __slots__ = ("sent",)

    def transform_first_chunk(
        self, status_code: int, headers: HTTPHeaders, chunk: bytes, finishing: bool
    ) -> tuple[int, HTTPHeaders, bytes]:
        self.sent = len(chunk)
        return status_code, headers, chunk

    def transform_chunk(self, chunk: bytes, finishing: bool) -> bytes:
        self.sent += len(chunk)
        return chunk


def bytes_sent(handler: RequestHandler) -> int:
    counter = handler._transforms[-1] if handler._transforms else None
    return counter.sent if isinstance(counter, BytesSent) and hasattr(counter, "sent") else 0


class RequestLog:
    """Tornado's ``log_function``: called once each request is answered."""

    def __init__(self, metrics: RoomsMetrics, routes: dict[type[RequestHandler], str]) -> None:
        self._requests = metrics.http_requests
        self._routes = routes
        self._children: _Children = {}

    def __call__(self, handler: RequestHandler) -> None:
        request = handler.request
        self.record(
            self.route_of(handler),
            request.method or "",
            handler.get_status(),
            request.request_time(),
            request.uri or "",
            bytes_sent(handler),
            request.remote_ip or "",
            request.headers.get("User-Agent", ""),
        )

    def record(
        self, route: str, method: str, status: int, seconds: float, uri: str, sent: int, client: str, agent: str
    ) -> None:
        """One request answered: ``sent`` bytes of body, ``seconds`` after it came."""
        self._series(route, method if method in METHODS else OTHER_METHOD, status).observe(seconds)
        level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
        if not ACCESS_LOG.isEnabledFor(level):
            return
        path = escape_controls_in(mask_credentials_in(uri))
        duration_ms = round(seconds * 1000.0, 2)
        fields = {
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": duration_ms,
            "bytes": sent,
            "client": client,
            "user_agent": agent,
        }
        ACCESS_LOG.log(level, ACCESS_LINE, status, method, path, client, duration_ms, sent, agent, extra=fields)

    def expect(self, route: str, method: str, status: int) -> None:
        """Make the series of an answer given often now: made at its first use, during a crowd's joins, its
        objects would outlive the crowd among the crowd's memory and keep it from going back."""
        self._series(route, method, status)

    def route_of(self, handler: RequestHandler) -> str:
        route = self._routes.get(type(handler))
        if route is not None:
            return route
        # Static files, which also answer the two fixed paths browsers and robots ask for at the top.
        path = handler.request.path
        if path.startswith(STATIC_PREFIX):
            return STATIC_ROUTE
        return path if path in TOP_FILES else NO_ROUTE

    def _series(self, route: str, method: str, status: int) -> Histogram:
        by_method = self._children.get(route)
        if by_method is None:
            by_method = self._children[route] = {}
        by_status = by_method.get(method)
        if by_status is None:
            by_status = by_method[method] = {}
        series = by_status.get(status)
        if series is None:
            series = by_status[status] = self._requests.labels(route, method, str(status))
        return series

"""Builds the Tornado application: routes, settings, and the one room layer every handler shares."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import tornado.httputil
import tornado.web

from backends.base import Backend
from rooms.access.addresses import AddressList
from rooms.access.policy import AccessPolicy
from rooms.access.room_patterns import RoomPatterns
from rooms.config.model import Config
from rooms.protocol import LABEL_PATTERN, Limits
from rooms.room.hub import RoomHub
from rooms.room.metrics import RoomsMetrics
from rooms.room.rates import RatePolicy
from rooms.service.version import rooms_version
from rooms.web.access_log import NO_ROUTE, BytesSent, RequestLog
from rooms.web.chat_handshake import ChatHandshakes
from rooms.web.client_addresses import ClientAddresses
from rooms.web.handlers.api import HealthHandler, MessagesApiHandler, MetricsHandler
from rooms.web.handlers.audit import AuditApiHandler
from rooms.web.handlers.base import ApiNotFoundHandler, NotFoundHandler, SiteOptions, UnknownHostHandler
from rooms.web.handlers.invites import InvitesApiHandler
from rooms.web.handlers.message import MessageHandler
from rooms.web.handlers.moderation import BanApiHandler, BansApiHandler, RoomApiHandler
from rooms.web.handlers.pages import HomeHandler, NewRoomHandler, RoomPageHandler, RoomRedirectHandler, StaticFiles
from rooms.web.handlers.search import SearchApiHandler
from rooms.web.handlers.socket import ChatSocketHandler
from rooms.web.keepalive import Keepalive
from rooms.web.origins import AllowedHosts, AllowedOrigins

FRAMES_PER_MESSAGE = 10
MIN_FRAMES_PER_SECOND = 100
MIN_FRAMES_BURST = 1000
MONITORING_ROUTES = ("/healthz", "/metrics")
UNKNOWN_HOST = "(unknown host)"
ROOMS_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def asset_folder(name: str) -> str:
    """``templates`` or ``static``: inside the installed package, else at the top of the checkout."""
    installed = os.path.join(ROOMS_PACKAGE, name)
    return installed if os.path.isdir(installed) else os.path.join(os.path.dirname(ROOMS_PACKAGE), name)


class RoomsApplication(tornado.web.Application):
    """The application and the room layer its handlers share (``hub``)."""

    def __init__(self, config: Config, backend: Backend, clock: Callable[[], float] = time.monotonic) -> None:
        limits = config.limits
        self.max_body_bytes = limits.max_frame_bytes  # what the server lets a request's body hold
        self.addresses = ClientAddresses(config.server.trusted_proxies, config.server.client_address_header)
        self.allowed_hosts = AllowedHosts(config.server.allowed_hosts)
        self.metrics_allowed = AddressList(config.server.metrics_allowed)
        self.hub = RoomHub(
            backend,
            RoomsMetrics(backend.metrics_collectors(), rooms_version()),
            RatePolicy(
                limits.messages_per_second,
                limits.burst,
                limits.address_rate,
                limits.address_bucket,
                limits.connections_per_address,
                limits.address_blocks,
                limits.searches_per_minute,
                clock,
            ),
            config.history.page_size,
            config.history.expire_after_days,
            unlisted=RoomPatterns(config.rooms.private),
        )
        self.access = AccessPolicy.from_config(config)
        site = SiteOptions(
            limits=Limits(limits.max_handle_chars, limits.max_message_chars),
            max_frame_bytes=limits.max_frame_bytes,
            burst=limits.burst,
            send_buffer_bytes=limits.send_buffer_bytes,
            allowed_origins=AllowedOrigins(config.server.allowed_origins),
            metrics_allowed=self.metrics_allowed,
            keepalive=Keepalive(config.server.ping_interval) if config.server.ping_interval else None,
            # Far above what the message limits let through (pings, pongs and a close included), and
            # still a bound on frames that carry nothing (pings, empty continuations) or only errors.
            frames_per_second=max(MIN_FRAMES_PER_SECOND, FRAMES_PER_MESSAGE * limits.messages_per_second),
            frames_burst=max(MIN_FRAMES_BURST, FRAMES_PER_MESSAGE * limits.burst),
        )
        deps: dict[str, object] = {"hub": self.hub, "site": site, "access": self.access}
        self.deps = deps
        label = f"({LABEL_PATTERN})"
        # Each route's pattern as the metrics name it: never the path, which is unbounded.
        # The socket's first: every join is a request, the one a busy server answers most, and each route
        # before it would be one more pattern tried (no other route's pattern matches its paths).
        routes: list[tuple[str, type[tornado.web.RequestHandler], str]] = [
            (r"/chat/([^/]+)/?", ChatSocketHandler, "/chat/{label}/"),
            (r"/", HomeHandler, "/"),
            (r"/new/?", NewRoomHandler, "/new"),
            (r"/healthz", HealthHandler, "/healthz"),
            (r"/metrics", MetricsHandler, "/metrics"),
            (r"/api/rooms/([^/]+)/messages", MessagesApiHandler, "/api/rooms/{label}/messages"),
            (r"/api/rooms/([^/]+)/messages/([^/]+)", MessageHandler, "/api/rooms/{label}/messages/{id}"),
            (r"/api/rooms/([^/]+)/search", SearchApiHandler, "/api/rooms/{label}/search"),
            (r"/api/rooms/([^/]+)/invites", InvitesApiHandler, "/api/rooms/{label}/invites"),
            (r"/api/rooms/([^/]+)", RoomApiHandler, "/api/rooms/{label}"),
            (r"/api/bans", BansApiHandler, "/api/bans"),
            (r"/api/bans/([^/]+)", BanApiHandler, "/api/bans/{id}"),
            (r"/api/audit", AuditApiHandler, "/api/audit"),
            (r"/api/.*", ApiNotFoundHandler, NO_ROUTE),
            (rf"/{label}", RoomRedirectHandler, "/{label}"),
            (rf"/{label}/", RoomPageHandler, "/{label}/"),
        ]
        route_names: dict[type[tornado.web.RequestHandler], str] = {handler: name for _, handler, name in routes}
        route_names[NotFoundHandler] = NO_ROUTE
        route_names[UnknownHostHandler] = UNKNOWN_HOST
        request_log = RequestLog(self.hub.metrics, route_names)
        # The handshakes the server answers itself, before Tornado's HTTP code (``make_http_server``).
        self.head_route = ChatHandshakes(
            self.hub, site, self.access, self.addresses, self.allowed_hosts, request_log, limits.max_frame_bytes
        )
        super().__init__(
            [(pattern, handler, deps) for pattern, handler, _ in routes],
            template_path=asset_folder("templates"),
            static_path=asset_folder("static"),
            static_handler_class=StaticFiles,
            websocket_max_message_size=limits.max_frame_bytes,
            default_handler_class=NotFoundHandler,
            default_handler_args=deps,
            compress_response=True,
            log_function=request_log,
        )
        self.add_transform(BytesSent)  # after compression: it counts what is sent

    def forget_departed(self) -> None:
        """Let go of what was kept for the clients that have gone: the room layer's per address, and the
        peers found to be proxies or not."""
        self.hub.forget_departed()
        self.addresses.forget()

    def find_handler(self, request: tornado.httputil.HTTPServerRequest, **kwargs: Any) -> Any:
        # Every request learns its client's address once, here, before any handler or log line uses it.
        request.remote_ip = self.addresses.of(request)
        # Here, before routing, so that no route (pages, API, socket, static files) can miss it; but a
        # monitor on the host asks for its health and metrics by address (http://127.0.0.1:8000/healthz).
        monitored = request.path in MONITORING_ROUTES and request.remote_ip in self.metrics_allowed
        if not (monitored or self.allowed_hosts.allow(request.host)):
            return self.get_handler_delegate(request, UnknownHostHandler, self.deps)
        return super().find_handler(request, **kwargs)


def make_app(config: Config, backend: Backend, clock: Callable[[], float] = time.monotonic) -> RoomsApplication:
    """The application, with its room layer at ``app.hub``. The backend is started by the caller. ``clock``
    is what the per-address search limit reads the time from (a test moves it on by a minute)."""
    return RoomsApplication(config, backend, clock)

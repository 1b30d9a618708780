"""Builds the Tornado application: routes, settings, and the one room hub every handler shares."""

from __future__ import annotations

import os
from typing import Any

import tornado.web

from backends.base import Backend
from rooms import handlers
from rooms.config import Config
from rooms.hub import RoomHub
from rooms.keepalive import Keepalive
from rooms.metrics import RoomsMetrics
from rooms.protocol import LABEL_PATTERN, Limits

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class StaticFiles(tornado.web.StaticFileHandler):
    """Static files, with 404 (not Tornado's 403) for a directory such as ``/static/``: nothing is there."""

    def validate_absolute_path(self, root: str, absolute_path: str) -> str | None:
        if os.path.isdir(absolute_path):
            raise tornado.web.HTTPError(404)
        return super().validate_absolute_path(root, absolute_path)


def handler_options(config: Config) -> dict[str, Any]:
    """The settings handlers read, flattened once so the hot path does no config lookups."""
    limits = config.limits
    return {
        "page_size": config.history.page_size,
        "limits": Limits(limits.max_handle_chars, limits.max_message_chars),
        "max_frame_bytes": limits.max_frame_bytes,
        "messages_per_second": limits.messages_per_second,
        "burst": limits.burst,
        "send_buffer_bytes": limits.send_buffer_bytes,
        "allowed_origins": frozenset(handlers.normalize_origin(o) for o in config.server.allowed_origins),
        "keepalive": Keepalive(config.server.ping_interval) if config.server.ping_interval else None,
    }


def make_app(config: Config, backend: Backend) -> tornado.web.Application:
    """The application, with its hub at ``app.hub``. The backend is started by the caller."""
    hub = RoomHub(backend, RoomsMetrics(backend.metrics_collectors()))
    deps = {"hub": hub, "options": handler_options(config)}
    label = f"({LABEL_PATTERN})"
    routes = [
        (r"/", handlers.HomeHandler, deps),
        (r"/new/?", handlers.NewRoomHandler, deps),
        (r"/healthz", handlers.HealthHandler, deps),
        (r"/metrics", handlers.MetricsHandler, deps),
        (r"/api/rooms/([^/]+)/messages", handlers.MessagesApiHandler, deps),
        (r"/chat/([^/]+)/?", handlers.ChatSocketHandler, deps),
        (rf"/{label}", handlers.RoomRedirectHandler, deps),
        (rf"/{label}/", handlers.RoomPageHandler, deps),
    ]
    app = tornado.web.Application(
        routes,
        template_path=os.path.join(PROJECT_ROOT, "templates"),
        static_path=os.path.join(PROJECT_ROOT, "static"),
        static_handler_class=StaticFiles,
        websocket_max_message_size=config.limits.max_frame_bytes,
        default_handler_class=handlers.NotFoundHandler,
        default_handler_args=deps,
        compress_response=True,
    )
    app.hub = hub  # type: ignore[attr-defined]
    return app

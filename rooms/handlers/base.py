"""What every HTTP handler shares: its dependencies, room labels, error pages and ``OPTIONS``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tornado.web import HTTPError, RequestHandler

from rooms.hub import RoomHub
from rooms.keepalive import Keepalive
from rooms.origins import AllowedOrigins
from rooms.protocol import Limits, encode, is_valid_label
from rooms.ratelimit import TokenBucket

# Methods a handler may implement, in the order ``Allow`` lists them.
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True)
class SiteOptions:
    """The settings handlers read, flattened once so the hot path does no config lookups."""

    limits: Limits
    max_frame_bytes: int
    burst: int
    send_buffer_bytes: int
    allowed_origins: AllowedOrigins
    keepalive: Keepalive | None
    frames_per_second: float
    frames_burst: int

    def frame_budget(self) -> TokenBucket:
        """A socket's bucket for the frames it sends, of every kind."""
        return TokenBucket(self.frames_per_second, self.frames_burst)


def allowed_methods(handler: RequestHandler) -> str:
    """The ``Allow`` header of a route: the methods its handler implements, and OPTIONS."""
    implemented = [m for m in _METHODS if getattr(type(handler), m.lower()) is not getattr(RequestHandler, m.lower())]
    return ", ".join([*implemented, "OPTIONS"])


def room_label(label: str) -> str:
    if not is_valid_label(label):
        raise HTTPError(404, reason="No such room")
    return label


class RoomsHandler(RequestHandler):
    """Dependencies come through the route: the room layer and the site's options."""

    def initialize(self, hub: RoomHub, site: SiteOptions) -> None:
        self.hub = hub
        self.site = site

    def options(self, *labels: str) -> None:
        for label in labels:  # every route's path arguments are room labels
            room_label(label)
        self.set_header("Allow", allowed_methods(self))
        self.set_status(204)
        self.finish()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.render("error.html", status_code=status_code, reason=self._reason)


class NotFoundHandler(RoomsHandler):
    def prepare(self) -> None:
        raise HTTPError(404, reason="Not found")


class JSONHandler(RoomsHandler):
    def write_json(self, payload: dict[str, Any], status: int = 200) -> None:
        self.write_encoded(encode(payload), status)

    def write_encoded(self, json_text: str, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json_text)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.write_json({"error": self._reason}, status_code)

"""The WebSocket at ``/chat/<label>/``: the handshake, and the translation between Tornado and a session."""

from __future__ import annotations

from collections.abc import Awaitable

from tornado.util import ObjectDict
from tornado.web import HTTPError
from tornado.websocket import WebSocketHandler

from backends.errors import BackendUnavailable, InvalidMessageId
from rooms.frames import PING_FRAME, FrameWriter
from rooms.handlers.base import SafeHeaders, SiteOptions, allowed_methods, room_label
from rooms.hub import RoomHub
from rooms.protocol import CloseCode
from rooms.session import SocketSession


class ChatSocketHandler(SafeHeaders, WebSocketHandler):
    def initialize(self, hub: RoomHub, site: SiteOptions) -> None:
        self.hub = hub
        self.site = site
        self.room = ""
        self.since: str | None = None
        self.joined = False
        self.storage_error: BackendUnavailable | None = None

    def options(self, *labels: str) -> None:
        for label in labels:
            room_label(label)
        self.set_header("Allow", allowed_methods(self))
        self.set_status(204)
        self.finish()

    async def get(self, label: str) -> None:
        room = room_label(label)
        since = self.get_query_argument("since", None) or None
        if since is not None:
            try:
                self.hub.id_key(since)
            except InvalidMessageId:
                raise HTTPError(400, reason="'since' is not a message id") from None
        self.room, self.since = room, since
        # In the room before the handshake is answered: a client that has connected misses nothing sent
        # after that. Storage that cannot be reached is told after the handshake, as a 1013 close.
        try:
            await self.hub.join(self, room)
        except BackendUnavailable as exc:
            self.storage_error = exc
        try:
            await super().get(label)
        finally:
            # A refused or failed handshake never opens, and so never closes; leaving twice is harmless.
            self.hub.leave(self, room)

    def check_origin(self, origin: str) -> bool:
        """Called only for cross-origin handshakes (Tornado already let through the ones whose Origin is
        this server's own Host). Browsers let any page open a WebSocket anywhere, so without this check a
        page elsewhere could chat as its visitors; behind a reverse proxy that rewrites Host, the
        operator lists the public origin in ``server.allowed_origins``."""
        return self.site.allowed_origins.allow(origin)

    async def open(self, label: str) -> None:
        # The handshake is over: the HTTP connection object (the stream is detached from it), the request
        # headers (a browser's cookies and user agent run to kilobytes) and the template namespace are
        # never used again, yet would stay in memory as long as the socket. The headers are emptied in
        # place because Tornado's suspended WebSocketHandler.get still holds them.
        self.request.connection = None
        self.request.headers.clear()
        self.ui = ObjectDict()
        assert self.ws_connection is not None and self.ws_connection.stream is not None  # open: both exist
        self.writer = FrameWriter(self.ws_connection.stream, self.site.send_buffer_bytes, self._close_slow_reader)
        self.set_nodelay(True)
        self.session = SocketSession(self.hub, self.room, self, self.site.limits, self.site.burst)
        self.hub.metrics.connections.inc()
        self.joined = True
        self.awaiting_pong = False
        if self.site.keepalive is not None:
            self.site.keepalive.add(self)
        try:
            if self.storage_error is not None:
                raise self.storage_error
            await self.hub.go_live(self, self.room, self.since)
        except BackendUnavailable:
            self.close(CloseCode.TRY_AGAIN_LATER, "storage unavailable, try again later")

    def on_message(self, frame: str | bytes) -> Awaitable[None] | None:
        # A plain method: Tornado wraps a coroutine in a Task and a Future of its own for every frame,
        # and reads nothing more until it ends. What this returns is awaited only when it must wait.
        return self.session.receive(frame)

    def send_frames(self, data: bytes) -> None:
        connection = self.ws_connection
        if connection is None or connection.is_closing():
            return  # nothing may follow a close frame
        self.writer.write(data)

    def _close_slow_reader(self) -> None:
        self.hub.metrics.slow_clients_closed.inc()
        self.hub.leave(self, self.room)
        self.close(CloseCode.TRY_AGAIN_LATER, "too slow to keep up; reconnect to resume")

    def keepalive_visit(self) -> None:
        connection = self.ws_connection
        if connection is None or connection.is_closing():
            return
        if self.awaiting_pong:
            self.close(reason="ping timed out")
            return
        self.awaiting_pong = True
        self.send_frames(PING_FRAME)

    def on_pong(self, data: bytes) -> None:
        self.awaiting_pong = False

    def close_going_away(self) -> None:
        self.close(CloseCode.GOING_AWAY, "server shutting down")

    def on_close(self) -> None:
        if self.joined:
            self.joined = False
            self.hub.metrics.connections.dec()
            self.hub.leave(self, self.room)
            if self.site.keepalive is not None:
                self.site.keepalive.discard(self)

"""The WebSocket at ``/chat/<label>/`` as Tornado's handler answers it: every handshake the server does
not answer itself (``rooms.web.chat_handshake``), which are those it refuses, and ``OPTIONS``."""

from __future__ import annotations

from collections.abc import Awaitable

from tornado.util import ObjectDict
from tornado.web import HTTPError
from tornado.websocket import WebSocketHandler, WebSocketProtocol, _WebSocketParams

from backends.errors import InvalidMessageId
from rooms.access.policy import AccessPolicy
from rooms.errors import TooManyConnections
from rooms.protocol import parse_features
from rooms.room.hub import RoomHub
from rooms.room.moderation import BANNED_ADDRESS
from rooms.room.session import SocketSession
from rooms.web.chat_socket import ChatSocket
from rooms.web.frame_protocol import FrameBudgetProtocol
from rooms.web.handlers.base import SafeHeaders, SiteOptions, admit, allowed_methods, bearer_credential, room_label


class ChatSocketHandler(SafeHeaders, WebSocketHandler):
    """Checks a handshake and answers it; once it is answered, the socket (``ChatSocket``) holds its life."""

    # In slots, not the instance's dict: Tornado's own attributes nearly fill the dict Python shares
    # between instances, and these would make it carry a full dict of its own (about 1.6 KiB).
    __slots__ = ("access", "hub", "session", "site", "socket")

    def initialize(self, hub: RoomHub, site: SiteOptions, access: AccessPolicy) -> None:
        self.hub = hub
        self.site = site
        self.access = access

    def options(self, *labels: str) -> None:
        for label in labels:
            room_label(label)
        self.set_header("Allow", allowed_methods(self))
        self.set_status(204)
        self.finish()

    async def get(self, label: str) -> None:
        room = room_label(label)
        # A browser cannot set headers on a WebSocket, so the page sends ?token=; a bot may use either.
        credential = self.get_query_argument("token", None) or bearer_credential(self)
        identity = admit(self, self.access, room, credential)
        since = self.get_query_argument("since", None) or None
        if since is not None:
            try:
                self.hub.id_key(since)
            except InvalidMessageId:
                raise HTTPError(400, reason="'since' is not a message id") from None
        self.socket = ChatSocket(self.site, self.request._start_time)
        self.session = self.socket.session = SocketSession(
            self.hub,
            room,
            self.socket,
            self.site.limits,
            self.site.burst,
            self.request.remote_ip or "",
            identity,
            features=parse_features(self.get_query_argument("features", "")),
            since=since,
            keepalive=self.site.keepalive,
        )
        if self.session.address_banned():
            raise HTTPError(403, reason=BANNED_ADDRESS)
        if not self._is_acceptable_handshake():
            # Tornado's own checks answer it (400 or 403) without anything joined or held for it.
            return await super().get(label)
        try:
            try:
                await self.session.join()
            except TooManyConnections as exc:
                raise HTTPError(429, reason=str(exc)) from None
            await super().get(label)
        finally:
            self.session.handshake_ended()

    def _is_acceptable_handshake(self) -> bool:
        """What Tornado checks before it upgrades: a WebSocket upgrade, from an allowed origin."""
        headers = self.request.headers
        return (
            headers.get("Upgrade", "").lower() == "websocket"
            and "upgrade" in (part.strip().lower() for part in headers.get("Connection", "").split(","))
            and self._check_cross_origin(self.check_origin) is None
        )

    def get_websocket_protocol(self) -> WebSocketProtocol | None:
        if self.request.headers.get("Sec-WebSocket-Version") != "13":
            return None  # Tornado answers 426 with the version it speaks
        params = _WebSocketParams(
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            max_message_size=self.max_message_size,
            compression_options=self.get_compression_options(),
        )
        # The frames go to the socket, not to this handler, which is let go once the socket is open.
        self.socket.connection = FrameBudgetProtocol(self.socket, params, self.site.frame_budget())
        return self.socket.connection

    def check_origin(self, origin: str) -> bool:
        """Called only for cross-origin handshakes (Tornado already let through the ones whose Origin is
        this server's own Host). Browsers let any page open a WebSocket anywhere, so without this check a
        page elsewhere could chat as its visitors; behind a reverse proxy that rewrites Host, the
        operator lists the public origin in ``server.allowed_origins``."""
        return self.site.allowed_origins.allow(origin)

    def open(self, label: str) -> Awaitable[None]:
        assert self.socket.connection is not None  # the 101 is sent: the protocol has the stream
        # The handler is done once the socket is open. Its request's HTTP connection leads back to it (through
        # the delegate that made it), as do the protocol it kept and its templates' namespace: let go of them,
        # so that it is freed by reference counting as its handshake ends, not left to the cycle collector.
        self.request.connection = None
        self.request.server_connection = None
        self.ws_connection = None
        self.ui = ObjectDict()
        return self.socket.open(self.socket.connection)

    def on_close(self) -> None:
        # The HTTP connection closed before the socket opened; a request refused before its session was
        # made (a bad label, a visitor not admitted) holds nothing.
        if hasattr(self, "session"):
            self.session.close()

"""The WebSocket at ``/chat/<label>/``: the handshake, and the translation between Tornado and a session."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable

from tornado.httputil import HTTPHeaders
from tornado.util import ObjectDict
from tornado.web import HTTPError
from tornado.websocket import WebSocketHandler, WebSocketProtocol, _WebSocketParams

from backends.errors import InvalidMessageId
from rooms.access.policy import AccessPolicy
from rooms.errors import TooManyConnections
from rooms.protocol import CloseCode, parse_features
from rooms.room.hub import RoomHub
from rooms.room.moderation import BANNED_ADDRESS
from rooms.room.session import TOO_SLOW, SocketSession, State
from rooms.service.lograte import SOCKET_LOG
from rooms.web.frame_protocol import FrameBudgetProtocol
from rooms.web.frame_writer import FrameWriter
from rooms.web.handlers.base import SafeHeaders, SiteOptions, admit, allowed_methods, bearer_credential, room_label

# What a socket's end is reported with when no close frame was sent or received (RFC 6455, 7.1.5).
ABNORMAL_CLOSURE = 1006
socket_log = logging.getLogger(SOCKET_LOG)
# The line's fields (``extra``, so JSON shows them as keys); the text line shows them all too.
SOCKET_END_LINE = "socket closed: room %s, %s, %.1fs, code %d%s, frames sent %d, received %d"


class ChatSocketHandler(SafeHeaders, WebSocketHandler):
    """Translates between the wire and the socket's session (``rooms.room.session``), which holds its life."""

    # In slots, not the instance's dict: Tornado's own attributes nearly fill the dict Python shares
    # between instances, and these would make every socket carry a full dict of its own (about 1.6 KiB).
    __slots__ = ("access", "frames_received", "frames_sent", "hub", "session", "site", "writer")

    def initialize(self, hub: RoomHub, site: SiteOptions, access: AccessPolicy) -> None:
        self.hub = hub
        self.site = site
        self.access = access
        self.writer: FrameWriter | None = None  # once open
        # Counted for the line its end writes; two ints are all a socket spends on it.
        self.frames_sent = 0
        self.frames_received = 0

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
        self.session = SocketSession(
            self.hub,
            room,
            self,
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
        return FrameBudgetProtocol(self, params, self.site.frame_budget())

    def check_origin(self, origin: str) -> bool:
        """Called only for cross-origin handshakes (Tornado already let through the ones whose Origin is
        this server's own Host). Browsers let any page open a WebSocket anywhere, so without this check a
        page elsewhere could chat as its visitors; behind a reverse proxy that rewrites Host, the
        operator lists the public origin in ``server.allowed_origins``."""
        return self.site.allowed_origins.allow(origin)

    def open(self, label: str) -> Awaitable[None]:
        # The handshake is over: the HTTP connection objects (the stream is detached from them), the request
        # and response headers (a browser's cookies and user agent run to kilobytes), the query's arguments
        # and the template namespace are never used again, yet would stay in memory as long as the socket.
        request = self.request
        request.connection = None
        request.server_connection = None  # with the Task that served its requests
        request.headers = self._headers = HTTPHeaders()  # the response's were sent with the 101
        request.arguments.clear()
        request.query_arguments.clear()
        self._transforms = []  # what the 101 went through (compression, the count of bytes sent)
        self.ui = ObjectDict()
        assert self.ws_connection is not None and self.ws_connection.stream is not None  # open: both exist
        self.writer = FrameWriter(self.ws_connection.stream, self.site.send_buffer_bytes)
        self.set_nodelay(True)
        return self.session.open()

    def on_message(self, frame: str | bytes) -> Awaitable[None] | None:
        # A plain method: Tornado wraps a coroutine in a Task and a Future of its own for every frame,
        # and reads nothing more until it ends. What this returns is awaited only when it must wait.
        self.frames_received += 1
        return self.session.receive(frame)

    def is_closing(self) -> bool:
        connection = self.ws_connection
        return connection is None or connection.is_closing()

    def send_frames(self, data: bytes, frames: int = 1) -> None:
        if self.is_closing():
            return  # nothing may follow a close frame
        assert self.writer is not None  # a connection that is not closing is open
        self.frames_sent += frames
        if not self.writer.write(data):
            self._close_slow_reader()

    def send_room(self) -> int:
        if self.writer is None or self.session.state is not State.OPEN:
            return self.site.send_buffer_bytes  # nothing written yet
        return self.site.send_buffer_bytes - self.writer.buffered

    async def drained(self) -> bool:
        assert self.writer is not None  # a replay runs once open
        if not await self.writer.drained():
            return False
        # It takes what it is sent, the ping among it: as good as a pong, which is not read during a replay.
        self.session.peer_answered()
        return True

    def close_too_slow(self) -> None:
        if self.writer is not None and self.session.state is State.OPEN:
            self.writer.give_up()
            self._close_slow_reader()
        else:  # its handshake is being answered: the session's open closes it, finding it out of the room
            self.session.left_too_slow()

    def _close_slow_reader(self) -> None:
        self.session.left_too_slow()
        self.close(CloseCode.TRY_AGAIN_LATER, TOO_SLOW)

    def on_pong(self, data: bytes) -> None:
        self.frames_received += 1
        self.session.peer_answered()

    def close_going_away(self) -> None:
        self.close(CloseCode.GOING_AWAY, "server shutting down")

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        if not self.is_closing():
            # The first close frame is the socket's end, whoever sends it. Tornado keeps only the peer's,
            # in these same attributes: this side's is kept there until the connection is over.
            self.close_code = 1000 if code is None and reason is not None else code
            self.close_reason = reason
        super().close(code, reason)

    def on_ws_connection_close(self, close_code: int | None = None, close_reason: str | None = None) -> None:
        if self.close_code is not None:  # this side closed first: the peer's frame only echoes it
            close_code, close_reason = self.close_code, self.close_reason
        super().on_ws_connection_close(close_code, close_reason)

    def on_close(self) -> None:
        # A request refused before its session was made (a bad label, a visitor not admitted) holds nothing.
        if hasattr(self, "session"):
            self.session.close()
        if self.writer is not None:  # it opened
            self._log_end()

    def _log_end(self) -> None:
        if not socket_log.isEnabledFor(logging.INFO):
            return
        code = ABNORMAL_CLOSURE if self.close_code is None else self.close_code
        reason = self.close_reason or ""
        seconds = round(time.time() - self.request._start_time, 3)  # since the handshake's request came
        fields = {
            "room": self.session.room,
            "client": self.session.address,
            "duration_s": seconds,
            "close_code": code,
            "close_reason": reason,
            "frames_sent": self.frames_sent,
            "frames_received": self.frames_received,
        }
        socket_log.info(
            SOCKET_END_LINE,
            self.session.room,
            self.session.address,
            seconds,
            code,
            f" {reason!r}" if reason else "",
            self.frames_sent,
            self.frames_received,
            extra=fields,
        )

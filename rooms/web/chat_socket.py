"""An open WebSocket at ``/chat/<label>/``: the translation between its frames and its session.

Whichever way its handshake was answered (``rooms.web.chat_handshake``, or Tornado's handler for what
that leaves to it), the socket's life is this object's: it is the frame protocol's handler (what Tornado
calls with each frame and at the end) and the session's socket (what the room writes frames to and closes).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from types import TracebackType

from tornado.iostream import StreamClosedError
from tornado.log import app_log

from rooms.protocol import CloseCode
from rooms.room.session import TOO_SLOW, SocketSession, State
from rooms.service.lograte import SOCKET_LOG
from rooms.web.frame_protocol import FrameBudgetProtocol
from rooms.web.frame_writer import FrameWriter
from rooms.web.handlers.base import SiteOptions

# What a socket's end is reported with when no close frame was sent or received (RFC 6455, 7.1.5).
ABNORMAL_CLOSURE = 1006
socket_log = logging.getLogger(SOCKET_LOG)
# The line's fields (``extra``, so JSON shows them as keys); the text line shows them all too.
SOCKET_END_LINE = "socket closed: room %s, %s, %.1fs, code %d%s, frames sent %d, received %d"


class ChatSocket:
    """One socket, from its handshake's request to its end line."""

    __slots__ = (
        "close_code",
        "close_reason",
        "connection",
        "ended",
        "frames_received",
        "frames_sent",
        "session",
        "site",
        "started",
        "writer",
    )

    def __init__(self, site: SiteOptions, started: float) -> None:
        self.site = site
        self.started = started  # the time.time() its handshake's request came at
        self.session: SocketSession  # made with this socket, then set
        self.connection: FrameBudgetProtocol | None = None  # once its handshake is answered, until closed
        self.writer: FrameWriter | None = None  # once open
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.ended = False
        # Counted for the line its end writes; two ints are all a socket spends on it.
        self.frames_sent = 0
        self.frames_received = 0

    def open(self, connection: FrameBudgetProtocol) -> Awaitable[None]:
        """The 101 is sent: frames may come and go on ``connection``."""
        stream = connection.stream
        assert stream is not None  # the handshake's answer handed it the stream
        self.writer = FrameWriter(stream, self.site.send_buffer_bytes)
        stream.set_nodelay(True)
        return self.session.open()

    def on_message(self, frame: str | bytes) -> Awaitable[None] | None:
        # A plain method: Tornado wraps a coroutine in a Task and a Future of its own for every frame,
        # and reads nothing more until it ends. What this returns is awaited only when it must wait.
        self.frames_received += 1
        return self.session.receive(frame)

    def on_ping(self, data: bytes) -> None:
        pass  # Tornado's protocol answers it

    def on_pong(self, data: bytes) -> None:
        self.frames_received += 1
        self.session.peer_answered()

    def log_exception(
        self, typ: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        app_log.error("Uncaught exception on a socket of room %s", self.session.room, exc_info=value)

    def is_closing(self) -> bool:
        connection = self.connection
        return connection is None or connection.is_closing()

    def send_frames(self, data: bytes, frames: int = 1) -> None:
        connection = self.connection
        # is_closing() spelled out, as a room's broadcast comes here once per socket; a stream closed
        # before the connection heard of it is the writer's to find.
        if connection is None or connection.server_terminated or connection.client_terminated:
            return  # nothing may follow a close frame
        assert self.writer is not None  # a connection that is not closing is open
        try:
            written = self.writer.write(data)
        except StreamClosedError:
            return  # its end is on its way
        self.frames_sent += frames
        if not written:
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

    def close_going_away(self) -> None:
        self.close(CloseCode.GOING_AWAY, "server shutting down")

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        if not self.is_closing():
            # The first close frame is the socket's end, whoever sends it; the peer's only echoes it.
            self.close_code = 1000 if code is None and reason is not None else code
            self.close_reason = reason
        if self.connection is not None:
            self.connection.close(code, reason)
            self.connection = None

    def on_ws_connection_close(self, close_code: int | None = None, close_reason: str | None = None) -> None:
        """The connection is over (Tornado's protocol calls this once it stops reading)."""
        if self.close_code is None:  # the peer closed first, or the connection broke
            self.close_code, self.close_reason = close_code, close_reason
        if self.connection is not None:
            self.connection.on_connection_close()
            self.connection = None
        if not self.ended:
            self.ended = True
            self.session.close()
            if self.writer is not None:  # it opened
                self._log_end()

    def _log_end(self) -> None:
        if not socket_log.isEnabledFor(logging.INFO):
            return
        code = ABNORMAL_CLOSURE if self.close_code is None else self.close_code
        reason = self.close_reason or ""
        seconds = round(time.time() - self.started, 3)  # since the handshake's request came
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

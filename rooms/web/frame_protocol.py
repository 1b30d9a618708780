"""Tornado's WebSocket protocol, with every frame a client sends charged to a budget and checked for its mask."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, cast

from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketHandler, WebSocketProtocol13, _WebSocketParams

from backends.token_bucket import TokenBucket
from rooms.protocol import CloseCode

# The bit of a frame's second byte that says its payload is masked (RFC 6455, section 5.2).
MASKED = 0x80


class FrameBudgetProtocol(WebSocketProtocol13):
    """Tornado's protocol, charging every frame read (pings and empty continuations included) to a
    bucket: one that sends frames faster than any client needs is closed with 1008 and read no further.
    A frame that is not masked fails the connection with 1002, as RFC 6455 requires of a server (Tornado
    would take it)."""

    def __init__(self, handler: WebSocketHandler, params: _WebSocketParams, frames: TokenBucket) -> None:
        super().__init__(handler, False, params)
        self._frames = frames
        self._frame_starts = False

    def _receive_frame(self) -> Coroutine[Any, Any, None]:
        # Not a coroutine itself: the read loop awaits Tornado's own, with no frame more per frame read.
        if self._frames.take():
            self._frame_starts = True
            return super()._receive_frame()
        return self._refuse(CloseCode.POLICY, "too many frames")

    async def _read_bytes(self, n: int) -> bytes:
        data = await super()._read_bytes(n)
        if self._frame_starts:  # Tornado reads a frame's first two bytes, its header, first
            self._frame_starts = False
            if not data[1] & MASKED:
                await self._refuse(CloseCode.PROTOCOL_ERROR, "client frames must be masked")
        return data

    async def _refuse(self, code: CloseCode, reason: str) -> None:
        cast(WebSocketHandler, self.handler).close(code, reason)  # the handler's: it keeps the code for the log
        assert self.stream is not None  # reading: the stream is there
        await self.stream.write(b"")  # resolves once the close frame is written (or the stream is gone)
        raise StreamClosedError()  # ends Tornado's read loop, which aborts the stream and calls on_close

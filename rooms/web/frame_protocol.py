"""Tornado's WebSocket protocol, with every frame a client sends charged to a budget and checked for its
mask, and read without a coroutine waiting for each idle socket.

Tornado reads frames in a coroutine that awaits the next frame for as long as the socket is idle, under
the coroutines of the handshake that started it (the handler's ``get``, the accept, the read loop): about
ten suspended coroutines and a Task per open socket, some 3 KiB, that only wait. Here the wait for a
frame's first two bytes is a callback on the stream's read, and the handshake's coroutines end once the
socket is open. Tornado's own ``_receive_frame`` then reads the rest of the frame, stepped here through
whatever it awaits (the rest of the frame, the reply to the one before); most frames end without a wait.
"""

from __future__ import annotations

import asyncio
import struct
import sys
from collections.abc import Coroutine
from typing import Any, Protocol, cast

from tornado.ioloop import IOLoop
from tornado.iostream import StreamClosedError
from tornado.log import gen_log
from tornado.websocket import WebSocketProtocol13, _WebSocketDelegate, _WebSocketParams

from backends.token_bucket import TokenBucket
from rooms.protocol import CloseCode

# The bit of a frame's second byte that says its payload is masked (RFC 6455, section 5.2).
MASKED = 0x80
# As Tornado's read loop: after this much work (bytes read, and this much per frame) it lets the rest of
# the process run before it reads on, so one fast sender cannot hold the loop.
YIELD_AFTER = 256 * 1024
FRAME_COST = 1024

Frame = Coroutine[Any, Any, None]

# The formats Tornado's frames are read and written with (``struct.unpack("BB", ...)``, and a close's
# ``struct.pack(">H", ...)``): struct compiles each at its first use into a cache it keeps, and that use
# comes while a big room is full (its first message, its first leaving), so the cached objects would keep
# one of the crowd's memory arenas. Compiled here, before any socket.
TORNADO_FORMATS = ("B", "BB", "!BH", "!BQ", "!H", "!Q", ">H")


def compile_tornado_formats() -> None:
    for format in TORNADO_FORMATS:
        struct.calcsize(format)


compile_tornado_formats()


class FrameHandler(_WebSocketDelegate, Protocol):
    """What the protocol calls: Tornado's handler interface, and the close that keeps its code for the log."""

    def close(self, code: int | None = None, reason: str | None = None) -> None: ...


class FrameBudgetProtocol(WebSocketProtocol13):
    """Tornado's protocol, charging every frame read (pings and empty continuations included) to a
    bucket: one that sends frames faster than any client needs is closed with 1008 and read no further.
    A frame that is not masked fails the connection with 1002, as RFC 6455 requires of a server (Tornado
    would take it)."""

    # In slots, not the instance's dict: Tornado's attributes nearly fill the dict it shares with its class.
    __slots__ = ("_frames", "_header", "_read_at_yield", "_work")
    handler: FrameHandler

    def __init__(self, handler: FrameHandler, params: _WebSocketParams, frames: TokenBucket) -> None:
        super().__init__(handler, False, params)
        self._frames = frames
        self._header: bytes | None = None  # a frame's first two bytes, read while the socket was idle
        self._work = 0
        self._read_at_yield = 0

    async def _receive_frame_loop(self) -> None:
        # Returns at once (and with it the handshake's coroutines): the frames are read by callbacks.
        self._read_frames()

    def _read_frames(self) -> None:
        """Read the frames already there; then wait for the next one's header with a callback."""
        while not self.client_terminated:
            if self._work + self._wire_bytes_in - self._read_at_yield >= YIELD_AFTER:
                self._work, self._read_at_yield = 0, self._wire_bytes_in
                IOLoop.current().add_callback(self._read_frames)
                return
            assert self.stream is not None  # open: the stream is there
            try:
                header = cast(asyncio.Future[bytes], self.stream.read_bytes(2))
            except StreamClosedError:
                self._ended(closed=True)
                return
            if not header.done():
                header.add_done_callback(self._header_read)
                return
            if not self._frame_begun(header):
                return
        self._ended()

    def _header_read(self, header: asyncio.Future[bytes]) -> None:
        if self._frame_begun(header):
            self._read_frames()

    def _frame_begun(self, header: asyncio.Future[bytes]) -> bool:
        """Read the frame whose header came; whether it is over (False: it waits, or the socket ended)."""
        # Asked, not raised: a raised error's traceback would keep this frame, and with it the future that
        # keeps the error, a cycle that would leave the closed socket's objects to the cycle collector.
        if isinstance(header.exception(), StreamClosedError):
            self._ended(closed=True)
            return False
        data = header.result()
        self._wire_bytes_in += 2
        self._work += FRAME_COST
        if not self._frames.take():
            return self._step(self._refuse(CloseCode.POLICY, "too many frames"))
        if not data[1] & MASKED:
            return self._step(self._refuse(CloseCode.PROTOCOL_ERROR, "client frames must be masked"))
        self._header = data
        return self._step(self._receive_frame())

    def _step(self, frame: Frame) -> bool:
        """Run ``frame`` until it waits or ends; whether it ended with the socket still being read."""
        try:
            awaited = frame.send(None)
        except StopIteration:
            return True
        except (StreamClosedError, asyncio.CancelledError):  # as Tornado's read loop and accept: torn down
            self._ended(closed=True)
        except ValueError:  # as Tornado's accept: a malformed frame (its compressed data, say)
            gen_log.debug("Malformed WebSocket request received", exc_info=True)
            self._ended(closed=True)
        except Exception:
            self.handler.log_exception(*sys.exc_info())
            self._ended(closed=True)
        else:
            if awaited is None:  # a bare yield (asyncio.sleep(0)): go on at the loop's next turn
                IOLoop.current().add_callback(self._resume, frame)
            else:  # a Future, as a Task would take it
                awaited._asyncio_future_blocking = False
                awaited.add_done_callback(lambda _: self._resume(frame))
        return False

    def _resume(self, frame: Frame) -> None:
        if self._step(frame):
            self._read_frames()

    def _ended(self, closed: bool = False) -> None:
        """Reading is over: the connection torn down if it ended with an error, and the handler told."""
        if closed:
            self._abort()
        if self.stream is not None and self.stream.error is not None:
            # The error the stream ended with (a reset, say) keeps the frames it was raised through, and
            # they the stream: a cycle only the collector would free. Its traceback is never shown.
            self.stream.error.__traceback__ = None
        self.handler.on_ws_connection_close(self.close_code, self.close_reason)

    async def _read_bytes(self, n: int) -> bytes:
        header = self._header
        if header is not None:  # Tornado reads a frame's header first: it was read (and counted) already
            self._header = None
            return header
        return await super()._read_bytes(n)

    async def _refuse(self, code: CloseCode, reason: str) -> None:
        self.handler.close(code, reason)  # the handler's: it keeps the code for the log
        assert self.stream is not None  # reading: the stream is there
        await self.stream.write(b"")  # resolves once the close frame is written (or the stream is gone)
        raise StreamClosedError()  # ends the reading, which aborts the stream and calls on_close

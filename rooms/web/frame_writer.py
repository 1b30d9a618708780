"""Frames written straight to a socket's stream, as few system calls as it can.

Server frames are never masked, so one frame's bytes (``rooms.protocol.text_frame``) can be written to
every client of a room: the broadcast builds each frame once instead of once per socket.
"""

from __future__ import annotations

import contextlib

from tornado.iostream import IOStream, SSLIOStream, StreamBufferFullError, StreamClosedError


class FrameWriter:
    """Writes complete frames to one socket's stream, behind anything Tornado itself queued there.

    Past ``max_buffered`` bytes waiting to be sent, the peer is too slow: ``write`` says so and drops the
    frame (the caller closes the socket). It holds nothing of its caller's, so that a closed socket's
    objects are freed as soon as they are unused, without the cycle collector.
    """

    __slots__ = ("_socket", "_stream")

    def __init__(self, stream: IOStream, max_buffered: int) -> None:
        stream.max_write_buffer_size = max_buffered
        self._stream = stream
        # TLS streams must go through SSLIOStream.write (a partial SSL write has to be retried as is).
        self._socket = None if isinstance(stream, SSLIOStream) else stream.socket

    def write(self, data: bytes) -> bool:
        """Write whole frames; False when the peer is too slow to take them (the frame is dropped).
        Raises StreamClosedError when the stream has closed."""
        stream = self._stream
        begun = False
        # A room's broadcast comes here once per socket: the test of Tornado's queue reads its counters
        # rather than calling ``writing()``, whose buffer's length is a Python method too.
        if self._socket is not None and stream._total_write_index == stream._total_write_done_index:
            # IOStream.write makes a Future, schedules its callback and slices its buffer for every call:
            # in a big room that costs more than the send itself. With nothing queued, the socket takes
            # the bytes straight away; only what it does not take is queued in the stream, and every later
            # frame then queues behind it, so order holds and the send buffer bound still applies.
            try:
                sent = self._socket.send(data)
            except OSError:
                sent = 0  # a full socket, or a closed one: the stream's own write handles both as always
            if sent == len(data):
                return True
            begun = sent > 0
            data = data[sent:]
        try:
            stream.write(data)
        except StreamBufferFullError:
            if begun:
                # The head of a frame is out: its rest must follow before the close frame, or the peer reads
                # the close as part of a broken frame.
                stream.max_write_buffer_size = None
                with contextlib.suppress(StreamClosedError):
                    stream.write(data)
            self.give_up()
            return False
        return True

    def give_up(self) -> None:
        """The peer is too slow: the socket is about to be closed."""
        # The close frame must still fit in the buffer; Tornado aborts the stream if no reply comes.
        self._stream.max_write_buffer_size = None

    @property
    def buffered(self) -> int:
        """Bytes written and not yet taken by the socket (what this peer costs the process)."""
        stream = self._stream
        # Tornado keeps no public count; its buffer is dropped once the stream closes.
        return 0 if stream.closed() else len(stream._write_buffer)

    async def drained(self) -> bool:
        """Wait until everything written so far has gone to the socket; whether the stream is still open."""
        try:
            await self._stream.write(b"")  # resolves once what is queued before it is written
        except StreamClosedError:
            return False
        return True

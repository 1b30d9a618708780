"""A client connection's stream: 431 for a head too large, a gentle close after an answer, and its reads
and writes cheaper where a join makes them (small first reads, a read that waits rather than tries, an
answer written straight to the socket, a head's end found without a regular expression's search)."""

from __future__ import annotations

import errno
import socket
import weakref
from asyncio import Future
from collections.abc import Awaitable
from typing import Any

from tornado.http1connection import HTTP1Connection
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, UnsatisfiableReadError

from rooms.web.lingering import close_gently
from rooms.web.request_head import END_OF_HEAD, end_of_head

# What one read of a connection takes at most: Tornado's default, once its first head is read (and, for a
# WebSocket answered by the server, once it waits for its first frame).
READ_CHUNK_BYTES = 64 * 1024
# Until then: every read zeroes a buffer of its size first, and a join's reads of its head (and the try
# that finds nothing at its accept) zeroed 64 KiB each for a head of a few hundred bytes.
FIRST_READ_CHUNK_BYTES = 8 * 1024

HEADERS_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"Connection: close\r\nContent-Length: 0\r\nX-Content-Type-Options: nosniff\r\n\r\n"
)


class ShortQueue(list[Any]):
    """The part of ``collections.deque`` an IOStream uses for its queues, as a list: an empty deque
    allocates a block of 64 slots (760 bytes), and every connection has two, nearly always empty. A
    connection's queues stay short (Tornado merges small writes), so taking from the front is cheap."""

    __slots__ = ()

    def popleft(self) -> Any:
        return self.pop(0)


class RequestStream(IOStream):
    """A client connection that answers 431 when its request's headers are too large, and that closes
    gently (``rooms.web.lingering``) when it closes after an answer to its current request.

    Tornado enforces ``max_header_size`` inside the stream: the read that finds no end of headers within
    the limit closes the stream itself, before any of Tornado's HTTP code can answer, so the client would
    see only a closed connection. The answer is written here, as that read closes the stream."""

    # In slots, not the instance's dict: an IOStream's attributes fill the dict Python keeps inline in the
    # object, and five more would make every connection carry a full dict of its own (about 1.6 KiB).
    __slots__ = (
        "_linger",
        "_reading_headers",
        "_request",
        "_wait_for_readable",
        "_written_before_request",
        "bytes_written",
        "tcp",
    )

    def __init__(self, *args: Any, tcp: bool, **kwargs: Any) -> None:
        # Whether its socket is TCP, as its listening socket's family says: ``socket.family`` makes an enum
        # of its int at each read (half a microsecond), and a join asked it twice.
        self.tcp = tcp
        self._reading_headers = False
        self._linger = False
        self._wait_for_readable = False
        super().__init__(*args, **kwargs)
        self._write_futures = ShortQueue()  # type: ignore[assignment]
        self._write_buffer._buffers = ShortQueue()  # type: ignore[assignment]
        self.bytes_written = 0
        self._written_before_request = 0
        self._request: weakref.ref[HTTP1Connection] | None = None

    def begin_request(self, connection: HTTP1Connection) -> None:
        """The next request is read by ``connection``: what is written from now on answers it."""
        self._request = weakref.ref(connection)
        self._written_before_request = self.bytes_written

    def current_request(self) -> HTTP1Connection | None:
        """The connection that reads (or answers) its current request, once one has begun."""
        return self._request() if self._request is not None else None

    def holds_unread_bytes(self) -> bool:
        """Whether something the client sent waits unread: in the stream's buffer, or still in the socket's."""
        if self._read_buffer_size:
            return True
        try:
            return bool(self.socket.recv(1, socket.MSG_PEEK))  # b"" at the client's end of stream
        except OSError:  # nothing yet (BlockingIOError), or a broken connection: nothing to read either way
            return False

    def read_until_regex(self, regex: bytes, max_bytes: int | None = None) -> Awaitable[bytes]:
        # HTTP1Connection reads a request's headers, and only those, with read_until_regex.
        self._reading_headers = True
        return super().read_until_regex(regex, max_bytes)

    def read_until(self, delimiter: bytes, max_bytes: int | None = None) -> Awaitable[bytes]:
        self._reading_headers = False  # a chunk-size line, whose overflow is not a header's
        return super().read_until(delimiter, max_bytes)

    def read_in_full_chunks(self) -> None:
        """Its first reads are over: read as much at a time as Tornado does."""
        self.read_chunk_size = READ_CHUNK_BYTES

    def read_when_readable(self) -> None:
        """The next read takes what is buffered already, else waits for the socket to be readable: where
        nothing can have come yet, Tornado's try at reading at once is a system call that finds nothing."""
        self._wait_for_readable = True

    def _try_inline_read(self) -> None:
        if not self._wait_for_readable:
            super()._try_inline_read()
            return
        self._wait_for_readable = False
        pos = self._find_read_pos()
        if pos is not None:
            self._read_from_buffer(pos)
            return
        self._check_closed()
        # Level-triggered: bytes already in the socket's buffer make it readable at once.
        self._add_io_state(IOLoop.READ)

    def _find_read_pos(self) -> int | None:
        regex = self._read_regex
        if regex is None or regex.pattern != END_OF_HEAD or not self._read_buffer:
            return super()._find_read_pos()
        pos = end_of_head(self._read_buffer)  # where Tornado's search of the regex would end
        self._check_max_bytes(regex, self._read_buffer_size if pos is None else pos)
        return pos

    def set_nodelay(self, value: bool) -> None:
        # Tornado's, with the family known rather than asked of the socket.
        if self.socket is not None and self.tcp:
            try:
                self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1 if value else 0)
            except OSError as e:
                if e.errno != errno.EINVAL and not self._is_connreset(e):  # closed at the wrong time
                    raise

    def unread(self, data: bytes) -> None:
        """Put ``data``, read already, back in front of what the stream holds, to be read again."""
        self._reading_headers = False
        self._read_buffer[:0] = data
        self._read_buffer_size += len(data)

    def write(self, data: bytes | memoryview) -> Future[None]:
        self.bytes_written += len(data)
        return super().write(data)

    def write_now(self, data: bytes) -> None:
        """``write`` without waiting to hear it is done: where nothing is queued before it, straight to the
        socket, as ``rooms.web.frame_writer`` writes a broadcast (``write`` makes a Future, a callback and
        a view of its buffer for every call); what the socket does not take then goes through ``write``.
        Raises ``StreamClosedError`` when the stream has closed."""
        self._check_closed()
        if self._total_write_index == self._total_write_done_index:
            try:
                sent = self.socket.send(data)
            except OSError:
                sent = 0  # a full socket, or a broken one: ``write`` handles both as always
            self.bytes_written += sent
            if sent == len(data):
                return
            data = data[sent:]
        self.write(data)

    def close(self, exc_info: Any = False) -> None:
        if isinstance(exc_info, UnsatisfiableReadError) and self._reading_headers and not self.closed():
            self.write(HEADERS_TOO_LARGE)
            self._linger = True  # the rest of the headers may still be on their way
        elif not exc_info and self._answered_by_http():
            # Closed after an answer (Connection: close, a refused body, a malformed request): the
            # client may have sent more than was read. A timeout, which answers nothing, just closes.
            self._linger = True
        super().close(exc_info)

    def answer_and_close(self, answer: bytes) -> None:
        """Write ``answer`` (on a stream detached from HTTP) and close gently once it is sent."""
        self._linger = True
        self.write(answer).add_done_callback(lambda _: self.close())

    def _answered_by_http(self) -> bool:
        # Not after a WebSocket's handshake: its socket then belongs to the WebSocket, which detached it.
        connection = self._request() if self._request is not None else None
        return (
            connection is not None and connection.stream is self and self.bytes_written > self._written_before_request
        )

    def close_fd(self) -> None:
        if self._linger:
            sock, self.socket = self.socket, None  # type: ignore[assignment]
            close_gently(sock)
            return
        super().close_fd()

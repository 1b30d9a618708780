"""A connection's stream writing an answer straight to its socket: whole and in order, through the stream
where the socket takes only part of it or nothing, and counted for the access log either way."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from tornado.ioloop import IOLoop

from rooms.web.request_stream import RequestStream
from tests.support.waiting import eventually


@pytest.fixture
def pair(io_loop: IOLoop) -> Iterator[tuple[RequestStream, socket.socket]]:
    ours, theirs = socket.socketpair()
    stream = RequestStream(ours, tcp=False)  # on the test's loop, which io_loop made current
    theirs.setblocking(False)
    yield stream, theirs
    stream.close()
    theirs.close()


def fill(sock: socket.socket) -> bytes:
    """Send until the socket takes no more; what it took."""
    sent = bytearray()
    chunk = b"f" * 4096
    while True:
        try:
            sent += chunk[: sock.send(chunk)]
        except BlockingIOError:
            return bytes(sent)


def take_all(sock: socket.socket, into: bytearray) -> int:
    """What the peer reads of it now (the test's reads run while the stream's writes wait on the loop)."""
    try:
        while chunk := sock.recv(65536):
            into += chunk
    except BlockingIOError:
        pass
    return len(into)


@pytest.mark.gen_test
async def test_an_answer_goes_straight_to_a_socket_that_takes_it(pair):
    stream, theirs = pair
    stream.write_now(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
    assert not stream.writing()  # nothing left in the stream
    assert theirs.recv(100) == b"HTTP/1.1 101 Switching Protocols\r\n\r\n"
    assert stream.bytes_written == 36


@pytest.mark.parametrize("full", [False, True], ids=["takes part", "takes nothing"])
@pytest.mark.gen_test
async def test_what_the_socket_does_not_take_is_written_by_the_stream_and_later_writes_queue_behind_it(pair, full):
    stream, theirs = pair
    before = fill(stream.socket) if full else b""
    answer, frame, more = b"a" * 4 * 1024 * 1024, b"b" * 10, b"c" * 10  # more than any socket buffer holds
    stream.write_now(answer)
    assert stream.writing()
    received = bytearray()
    take_all(theirs, received)  # the socket has room again, and the stream still holds the rest
    assert stream.writing()
    stream.write_now(frame)  # behind what the stream holds, not straight to the socket
    stream.write(more)
    expected = before + answer + frame + more
    await eventually(lambda: take_all(theirs, received) == len(expected))
    assert bytes(received) == expected
    assert stream.bytes_written == len(answer + frame + more)


def test_no_delay_is_set_on_a_tcp_stream_as_tornado_sets_it(io_loop: IOLoop) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    ours, _ = listener.accept()
    stream = RequestStream(ours, tcp=True)
    try:
        stream.set_nodelay(True)
        assert ours.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        stream.set_nodelay(False)
        assert ours.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
    finally:
        stream.close()
        client.close()
        listener.close()


def test_no_delay_is_left_alone_on_a_unix_stream(pair: tuple[RequestStream, socket.socket]) -> None:
    stream, _ = pair
    stream.set_nodelay(True)  # Tornado's does nothing on a socket that is not TCP, and neither does this
    assert not stream.closed()

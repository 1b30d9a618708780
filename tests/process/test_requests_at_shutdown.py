"""What a request already on its way when ``server.py`` is told to stop gets: an answer, never a connection
closed unanswered. Under socket activation a restart queues new connections for the next process, so the
old one's last connections are the only ones a restart could lose."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time

import pytest
from tornado.testing import bind_unused_port

from rooms.web.httpserver import FIRST_HEADS_AT_STOP_SECONDS, make_http_server
from tests.support.processes import ServerProcess

HOST = b"Host: 127.0.0.1\r\n"
HANDSHAKE = (
    b"GET /chat/lobby/ HTTP/1.1\r\n" + HOST + b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
)
MESSAGE = json.dumps({"handle": "ann", "message": "sent as the server stops"}).encode()


def connected(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def read_answer(sock: socket.socket) -> tuple[bytes, bytes]:
    """The head and the body of the one answer ``sock`` gets before the server closes it."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return head, body


def header(head: bytes, name: bytes) -> bytes | None:
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


def wait_logged(server: ServerProcess, text: str) -> None:
    deadline = time.monotonic() + 10
    while text not in server.log():
        assert time.monotonic() < deadline, f"{text!r} not logged:\n{server.log()}"
        time.sleep(0.02)


def test_requests_under_way_as_sigterm_comes_are_answered_and_their_connections_closed():
    server = ServerProcess(config="server:\n  shutdown_grace: 10\n")
    try:
        server.wait_healthy()
        # Accepted, their first heads half sent: the rest comes only after the server has begun to stop.
        page = connected(server.port)
        page.sendall(b"GET /healthz HTTP/1.1\r\n")
        join = connected(server.port)
        join.sendall(HANDSHAKE)
        # A request whose head the server has read (it asked for the body), its body still to come.
        post = connected(server.port)
        post.sendall(
            b"POST /api/rooms/lobby/messages HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: " + str(len(MESSAGE)).encode() + b"\r\n\r\n"
        )
        assert post.recv(4096).startswith(b"HTTP/1.1 100")
        # A kept-alive connection between two requests.
        idle = connected(server.port)
        idle.sendall(b"GET /healthz HTTP/1.1\r\n" + HOST + b"\r\n")
        assert idle.recv(4096).startswith(b"HTTP/1.1 200")
        # Connections are accepted in the order they were made: this one's answer means all were.
        with connected(server.port) as marker:
            marker.sendall(b"GET /healthz HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n")
            assert read_answer(marker)[0].startswith(b"HTTP/1.1 200")

        server.process.send_signal(signal.SIGTERM)
        wait_logged(server, "shutting down")
        assert idle.recv(4096) == b""  # closed at once, with nothing of a request read
        page.sendall(HOST + b"\r\n")
        join.sendall(b"\r\n")
        post.sendall(MESSAGE)

        head, body = read_answer(page)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert header(head, b"Connection") == b"close"
        assert json.loads(body)["status"] == "ok"

        # Not opened into a room that is closing: the page's script connects again, to the next process.
        head, body = read_answer(join)
        assert head.startswith(b"HTTP/1.1 503"), head
        assert header(head, b"Connection") == b"close"
        assert header(head, b"Retry-After") == b"1"
        assert header(head, b"Content-Type") == b"application/json; charset=utf-8"
        assert "shutting down" in json.loads(body)["error"]

        # Its head read before the stop, it is answered as it would have been, and its connection then closed.
        head, body = read_answer(post)
        assert head.startswith(b"HTTP/1.1 503"), head  # refused, and its sender told so: nothing stored unheard
        assert "shutting down" in json.loads(body)["error"]

        assert server.process.wait(timeout=20) == 0
    finally:
        server.stop()


@pytest.mark.gen_test(timeout=15)
async def test_a_first_head_that_never_comes_holds_the_stop_a_second_and_no_longer(app):
    sock, port = bind_unused_port()
    server = make_http_server(app, max_body_bytes=app.max_body_bytes)
    server.add_socket(sock)
    silent_reader, silent_writer = await asyncio.open_connection("127.0.0.1", port)
    silent_writer.write(b"GET /healthz HTTP/1.1\r\n")
    kept_reader, kept_writer = await asyncio.open_connection("127.0.0.1", port)
    kept_writer.write(b"GET /healthz HTTP/1.1\r\n" + HOST + b"\r\n")
    assert (await kept_reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")  # and the other accepted
    loop = asyncio.get_running_loop()
    server.stop()
    stopped = loop.time()
    draining = asyncio.ensure_future(server.drain(stopped + 10))
    # A kept-alive connection between requests is closed at once; a first head is awaited a second, not the grace.
    assert json.loads(await asyncio.wait_for(kept_reader.read(), 5))["status"] == "ok"
    await asyncio.wait_for(draining, 8)  # well before the grace of 10 s
    assert loop.time() - stopped >= FIRST_HEADS_AT_STOP_SECONDS
    assert await asyncio.wait_for(silent_reader.read(), 5) == b""
    silent_writer.close()
    kept_writer.close()

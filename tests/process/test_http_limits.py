"""How much a request may send, and how slowly: header size, header, body and idle deadlines.

The defaults are tested on ``server.py`` itself where that takes seconds; the rest in-process, with the
deadlines shortened, on the same server (``make_http_server``)."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest
from tornado.testing import bind_unused_port

from rooms.web.httpserver import BODY_SECONDS, HEADER_SECONDS, IDLE_SECONDS, MAX_HEADER_BYTES, make_http_server
from tests.support.clients import connect, receive_json
from tests.support.processes import ServerProcess

HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"


@pytest.fixture(scope="module")
def server_process():
    server = ServerProcess()
    try:
        server.wait_healthy()
        yield server
    finally:
        server.stop()


def answer_to(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        return sock.recv(4096)


@pytest.mark.parametrize(("padding", "status"), [(7 * 1024, b"200"), (9 * 1024, b"431")])
def test_headers_over_8_kib_are_answered_431(server_process, padding, status):
    request = HEALTHZ + b"X-Padding: " + b"a" * padding + b"\r\nConnection: close\r\n\r\n"
    assert answer_to(server_process.port, request).startswith(b"HTTP/1.1 " + status)


def test_a_client_trickling_header_lines_is_closed_at_the_header_deadline(server_process):
    with socket.create_connection(("127.0.0.1", server_process.port), timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(HEALTHZ)
        sock.settimeout(2)
        closed_after = None
        while closed_after is None and time.monotonic() - started < HEADER_SECONDS + 5:
            try:
                sock.sendall(b"X-Slow: 1\r\n")  # one line every 2 s, as slowloris does
                if sock.recv(100) == b"":
                    closed_after = time.monotonic() - started
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed_after = time.monotonic() - started
    assert closed_after is not None, "still open"
    assert HEADER_SECONDS - 1 <= closed_after < HEADER_SECONDS + 2


@pytest.fixture
def serve(app, io_loop):
    """``serve(**deadlines)``: the app served by ``make_http_server`` with those deadlines; its port."""
    servers = []

    def start(**deadlines: float) -> int:
        sock, port = bind_unused_port()
        server = make_http_server(app, max_body_bytes=app.max_body_bytes, **deadlines)
        server.add_socket(sock)
        servers.append(server)
        return port

    yield start
    for server in servers:
        server.stop()
        io_loop.run_sync(server.close_all_connections, timeout=5)


async def seconds_until_closed(reader: asyncio.StreamReader, timeout: float = 5) -> float:
    """Read until the server closes the connection, expecting nothing more from it."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await asyncio.wait_for(reader.read(), timeout) == b""
    return loop.time() - started


async def get_healthz(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(HEALTHZ + b"\r\n")
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    [length] = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")]
    await reader.readexactly(length)


def test_the_defaults():
    assert (MAX_HEADER_BYTES, HEADER_SECONDS, BODY_SECONDS, IDLE_SECONDS) == (8192, 10, 30, 60)
    params = make_http_server(object(), max_body_bytes=1).conn_params  # type: ignore[arg-type]
    assert (params.max_header_size, params.body_timeout, params.header_timeout) == (8192, 30, 60)


@pytest.mark.parametrize(
    "head_begun",
    [
        pytest.param(b"GET /healthz HTTP/1.1\r\n", id="a request"),
        pytest.param(b"GET /chat/lobby/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n", id="a handshake"),
    ],
)
@pytest.mark.gen_test(timeout=15)
async def test_a_first_head_that_stops_coming_gets_the_header_deadline_not_the_idle_one(serve, head_begun):
    port = serve(header_seconds=0.5, idle_seconds=5)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head_begun)
    assert 0.4 <= await seconds_until_closed(reader) < 3
    writer.close()


@pytest.mark.gen_test(timeout=15)
async def test_connections_accepted_at_different_times_each_get_their_own_header_deadline(serve):
    port = serve(header_seconds=1, idle_seconds=5)
    loop = asyncio.get_running_loop()
    first_reader, first_writer = await asyncio.open_connection("127.0.0.1", port)
    first_writer.write(b"GET /healthz HTTP/1.1\r\n")
    first_opened = loop.time()
    await asyncio.sleep(0.3)
    # A head that comes in time is served, and its connection stays open past every other's deadline.
    served_reader, served_writer = await asyncio.open_connection("127.0.0.1", port)
    await get_healthz(served_reader, served_writer)
    await asyncio.sleep(0.3)
    second_reader, second_writer = await asyncio.open_connection("127.0.0.1", port)
    second_writer.write(b"GET /healthz HTTP/1.1\r\n")
    second_opened = loop.time()
    assert await asyncio.wait_for(first_reader.read(), 5) == b""
    first_closed = loop.time()
    assert await asyncio.wait_for(second_reader.read(), 5) == b""
    second_closed = loop.time()
    assert 0.9 <= first_closed - first_opened < 3
    assert 0.9 <= second_closed - second_opened < 3
    assert second_closed - first_closed >= 0.5  # the second's deadline, not the first's
    await get_healthz(served_reader, served_writer)  # still open, on the idle deadline now
    for writer in (first_writer, served_writer, second_writer):
        writer.close()


@pytest.mark.gen_test(timeout=15)
async def test_a_body_that_stops_coming_is_closed_at_the_body_deadline(serve):
    port = serve(body_seconds=0.5)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /api/rooms/lobby/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n" + b'{"handle":'
    )
    assert 0.4 <= await seconds_until_closed(reader) < 3
    writer.close()


@pytest.mark.gen_test(timeout=15)
async def test_an_idle_keep_alive_connection_is_closed_at_the_idle_deadline(serve):
    port = serve(header_seconds=5, idle_seconds=0.5)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await get_healthz(reader, writer)
    await get_healthz(reader, writer)  # kept alive
    assert 0.4 <= await seconds_until_closed(reader) < 3
    writer.close()


@pytest.mark.gen_test(timeout=15)
async def test_a_websocket_is_not_held_to_any_http_deadline(serve):
    port = serve(header_seconds=0.2, body_seconds=0.2, idle_seconds=0.2)
    ws = await connect(port, "lobby")
    await asyncio.sleep(1)  # five times every deadline, in silence
    await ws.write_message(json.dumps({"handle": "ann", "message": "still here"}))
    assert (await receive_json(ws))["message"] == "still here"
    ws.close()

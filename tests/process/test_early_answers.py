"""A request's body and the answers given without it (docs/protocol.md, "Request limits"): a body over
``limits.max_frame_bytes`` is refused with 413 on every route before it is read; the client always gets
the whole answer, never a reset in its place; a refused body within the limit leaves the connection usable.

On ``server.py`` itself, over plain sockets that write a whole request before they read (as http.client
and requests do), so that what the client's kernel sees is what a real client would."""

from __future__ import annotations

import socket
import threading
from typing import BinaryIO

import pytest

from tests.support.processes import ServerProcess

LIMIT = 65536  # limits.max_frame_bytes, by default
HELLO = b'{"handle": "ann", "message": "hi"}'
REPEATS = 200


@pytest.fixture(scope="module")
def server():
    process = ServerProcess()
    try:
        process.wait_healthy()
        yield process
    finally:
        process.stop()


def request(method: str, path: str, body: bytes = b"", *headers: str) -> bytes:
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json", *headers]
    if not any(h.lower().startswith("transfer-encoding") for h in headers):
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def read_answer(answers: BinaryIO) -> tuple[int, dict[str, str], bytes]:
    """The next whole answer (status, headers, body) on a connection (``sock.makefile("rb")``)."""
    status_line = answers.readline()
    assert status_line, "closed before an answer"
    headers = {}
    while (line := answers.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.lower()] = value.strip()
    body = answers.read(int(headers["content-length"]))
    return int(status_line.split()[1]), headers, body


# -- no reset in place of an answer --------------------------------------------------------------------

# Within the limit: each is answered after its body is read, and the connection stays open for the next.
REFUSED_WITHIN_THE_LIMIT = [
    pytest.param(404, request("POST", "/api/rooms/..%2Fetc/messages", HELLO), id="404-invalid-label"),
    pytest.param(404, request("POST", "/api/rooms/..%2Fetc/messages", b"x" * 60_000), id="404-a-larger-body"),
    pytest.param(401, request("POST", "/api/rooms/lobby/messages", HELLO, "Authorization: Basic YTpi"), id="401"),
    pytest.param(405, request("PUT", "/", b"x" * 60_000), id="405"),
    pytest.param(
        415, request("POST", "/api/rooms/lobby/messages", b"x" * 60_000, "Content-Type: text/plain"), id="415"
    ),
]


@pytest.mark.parametrize(("status", "refused"), REFUSED_WITHIN_THE_LIMIT)
def test_a_refused_body_within_the_limit_is_read_and_the_connection_stays_usable(server, status, refused):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock, sock.makefile("rb") as answers:
        for _ in range(REPEATS):
            sock.sendall(refused + request("GET", "/healthz"))  # the next request right behind it
            assert read_answer(answers)[0] == status
            assert read_answer(answers)[0] == 200


@pytest.mark.parametrize("size", [LIMIT + 1, 200_000, 2_000_000])
def test_a_body_over_the_limit_sent_whole_before_reading_always_gets_its_413(server, size):
    too_large = request("POST", "/api/rooms/lobby/messages", b"x" * size)
    for _ in range(REPEATS if size < 1_000_000 else 20):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock, sock.makefile("rb") as answers:
            sock.sendall(too_large)  # a reset would fail this, or the reads after it
            status, headers, body = read_answer(answers)
            assert (status, headers["connection"]) == (413, "close")
            assert f"over {LIMIT} bytes".encode() in body
            assert answers.read() == b""  # then the server's side is closed, gently


# -- 413 on every route, before the body is read --------------------------------------------------------

ROUTES = ["/", "/lobby/", "/lobby", "/healthz", "/metrics", "/static/rooms.css", "/chat/lobby/", "/nowhere/at/all",
          "/api/rooms/lobby/messages", "/api/rooms/..%2Fetc/messages"]  # fmt: skip
NINETY_MIB = 90 * 1024 * 1024


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize("method", ["POST", "PUT", "GET"])
def test_an_announced_body_over_the_limit_is_413_on_every_route_before_it_is_sent(server, path, method):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock, sock.makefile("rb") as answers:
        # Only the headers: the answer cannot wait for a body that never comes.
        sock.sendall(request(method, path).replace(b"Content-Length: 0", f"Content-Length: {NINETY_MIB}".encode()))
        status, headers, body = read_answer(answers)
        assert (status, headers["content-type"]) == (413, "application/json; charset=utf-8")
        assert body == b'{"error": "request body too large: over 65536 bytes"}'
        assert answers.read() == b""


def peak_memory_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


@pytest.mark.parametrize("path", ["/", "/lobby/", "/healthz", "/chat/lobby/", "/nowhere", "/api/rooms/lobby/messages"])
def test_a_chunked_body_is_413_once_it_passes_the_limit_and_is_never_buffered(server, path):
    before = peak_memory_kib(server.process.pid)
    piece = b"x" * 1024 * 1024
    chunks = (f"{len(piece):x}\r\n".encode() + piece + b"\r\n" for _ in range(32))  # 32 MiB, never ended
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock, sock.makefile("rb") as answers:
        sock.sendall(request("POST", path, b"", "Transfer-Encoding: chunked"))
        sender = threading.Thread(target=send_until_refused, args=(sock, chunks))
        sender.start()
        status, _, body = read_answer(answers)
        sender.join()
    assert status == 413 and b"over 65536 bytes" in body
    assert peak_memory_kib(server.process.pid) - before < 8 * 1024  # far from the 32 MiB sent


def send_until_refused(sock: socket.socket, chunks) -> None:
    for chunk in chunks:
        try:
            sock.sendall(chunk)
        except OSError:  # the server closed after its answer, which the reader has
            return

"""What ``server.py`` writes to its log: never a credential (tokens and invites travel in URLs), never a line
a client's bytes split, a template repeated too often only five times a minute; with ``log_format: json``,
one JSON object a line."""

from __future__ import annotations

import json
import socket
import time
import urllib.request

from tests.support.processes import ServerProcess
from tests.support.tokens import MODERATOR_TOKEN, SECRET, claims, hs256


def test_server_logs_no_token_or_invite():
    token = hs256(claims(name="Ann"))
    server = ServerProcess(config=f"auth:\n  jwt_secret: {SECRET}\n")
    try:
        server.wait_healthy()
        for path in (f"/lobby/?token={token}", "/lobby/?invite=AbCdEfGhIjKlMnOpQrStUvWxYz012345"):
            urllib.request.urlopen(server.base_url + path, timeout=5).close()
        # The access line is written once the answer is out: wait for the last one.
        deadline = time.monotonic() + 10
        while "GET /lobby/?invite=" not in server.log() and time.monotonic() < deadline:
            time.sleep(0.02)
        log = server.log()
    finally:
        server.stop()
    assert "GET /lobby/?token=******** " in log and "GET /lobby/?invite=******** " in log, log
    assert token not in log and token.split(".")[2] not in log and "AbCdEfGhIjKl" not in log


def wait_for_line(server: ServerProcess, text: str) -> str:
    # The access line is written once the answer is out.
    deadline = time.monotonic() + 10
    while text not in server.log() and time.monotonic() < deadline:
        time.sleep(0.02)
    return server.log()


def test_server_logs_no_credential_however_its_name_or_value_is_percent_encoded():
    token = hs256(claims(name="Ann"))
    server = ServerProcess(config=f"auth:\n  jwt_secret: {SECRET}\nmoderation:\n  tokens: [{MODERATOR_TOKEN}]\n")
    encoded_token = "".join(f"%{byte:02X}" for byte in token.encode())
    try:
        server.wait_healthy()
        for path in (
            f"/lobby/?%74oken={token}",
            f"/lobby/?tok%65n={MODERATOR_TOKEN}",
            f"/lobby/?token={encoded_token}",
            "/lobby/?invit%65=AbCdEfGhIjKlMnOpQrStUvWxYz012345",
            "/lobby/?marker=1",
        ):
            urllib.request.urlopen(server.base_url + path, timeout=5).close()
        log = wait_for_line(server, "GET /lobby/?marker=1 ")
    finally:
        server.stop()
    assert "GET /lobby/?%74oken=******** " in log and "GET /lobby/?tok%65n=******** " in log, log
    assert token not in log and token.split(".")[2] not in log and encoded_token[:60] not in log
    assert MODERATOR_TOKEN not in log and "AbCdEfGhIjKl" not in log


def test_nothing_a_client_sends_splits_a_line_of_the_servers_log():
    server = ServerProcess()
    try:
        server.wait_healthy()
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            # Raw bytes in the request target (HTTP lets through those over 0x7F): NEL, CSI (which starts a
            # terminal's escape sequence), and LS in UTF-8 (E2 80 A8), which Tornado reads as Latin-1.
            sock.sendall(b"GET /a\x85b\x9bc\xe2\x80\xa8d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 404")
        log = wait_for_line(server, "GET /a\\x85b")
    finally:
        server.stop()
    [line] = [line for line in log.splitlines() if "GET /a" in line]
    assert "404 GET /a\\x85b\\x9bc\u00e2\\x80\u00a8d (127.0.0.1)" in line, log
    assert not any(char in log for char in "\x85\x9b\x80")


def test_server_py_limits_its_log():
    server = ServerProcess()
    try:
        server.wait_healthy()
        for _ in range(12):  # each one is logged by Tornado, with one template
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
                sock.sendall(b"NONSENSE\r\n\r\n")
                assert sock.recv(100).startswith(b"HTTP/1.1 400")
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 200")  # everything before it is in the log
        assert server.log().count("Malformed HTTP message") == 5, server.log()
    finally:
        server.stop()


def masked_close_frame(code: int, reason: str) -> bytes:
    """A client's close frame: masked, as RFC 6455 requires of a client."""
    payload = code.to_bytes(2, "big") + reason.encode()
    mask = b"\x01\x02\x03\x04"
    return bytes([0x88, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def test_json_log_format_writes_one_json_object_a_line():
    token = hs256(claims(name="Ann"))
    server = ServerProcess(config=f"server:\n  log_format: json\nauth:\n  jwt_secret: {SECRET}\n")
    try:
        server.wait_healthy()
        request = urllib.request.Request(f"{server.base_url}/lobby/?token={token}", headers={"User-Agent": "probe/2"})
        urllib.request.urlopen(request, timeout=5).close()
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(
                b"GET /chat/lobby/ HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            assert sock.recv(12).endswith(b" 101")
            sock.sendall(masked_close_frame(1000, "bye"))
            while sock.recv(1024):  # the server's close frame, then the end of the connection
                pass
        log = wait_for_line(server, "socket closed")
    finally:
        server.stop()
    lines = [json.loads(line) for line in log.splitlines()]  # every line is JSON
    assert all({"ts", "level", "logger", "message"} <= set(line) for line in lines)
    assert any(line["message"].startswith("rooms listening on http://") for line in lines)
    [page] = [line for line in lines if line.get("user_agent") == "probe/2"]
    assert page["path"] == "/lobby/?token=********" and page["method"] == "GET" and page["status"] == 200
    assert page["client"] == "127.0.0.1" and page["bytes"] > 0 and page["duration_ms"] >= 0
    [end] = [line for line in lines if line["logger"] == "rooms.socket"]
    assert (end["room"], end["close_code"], end["close_reason"]) == ("lobby", 1000, "bye")
    assert (end["frames_sent"], end["frames_received"]) == (0, 0) and end["duration_s"] >= 0
    assert token not in log

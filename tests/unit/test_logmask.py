"""Tokens and invites travel in URLs; the log shows URLs: what server.py logs never holds a credential, nor
a control character or line break that a client sent."""

from __future__ import annotations

import logging
import socket
import time
import urllib.request

import pytest

from rooms.logmask import ClientTextFilter, mask_credentials_in
from tests.support.processes import ServerProcess
from tests.support.tokens import MODERATOR_TOKEN, SECRET, claims, hs256


@pytest.mark.parametrize(
    ("line", "masked"),
    [
        ("200 GET /lobby/?token=abc.def.ghi (127.0.0.1) 1.00ms", "200 GET /lobby/?token=******** (127.0.0.1) 1.00ms"),
        ("GET /chat/a/?since=4&token=x.y.z&features=presence", "GET /chat/a/?since=4&token=********&features=presence"),
        ("404 GET /hq/?invite=AAAA_bbb-CC (::1)", "404 GET /hq/?invite=******** (::1)"),
        ("GET /hq/?Invite%3Dxyz", "GET /hq/?Invite%3D********"),
        ("uri='/hq/?token=abc', version", "uri='/hq/?token=********', version"),
        ("the token expired", "the token expired"),
        ("GET /lobby/?tokens=4", "GET /lobby/?tokens=4"),
    ],
)
def test_credentials_in_a_line_are_masked(line, masked):
    assert mask_credentials_in(line) == masked


def test_the_filter_rewrites_only_the_records_that_show_one():
    record = logging.LogRecord("tornado.access", logging.INFO, __file__, 1, "%d %s", (200, "GET /?token=t.o.k"), None)
    assert ClientTextFilter().filter(record) and record.getMessage() == "200 GET /?token=********"
    plain = logging.LogRecord("rooms", logging.INFO, __file__, 1, "%d sockets", (3,), None)
    assert ClientTextFilter().filter(plain) and (plain.msg, plain.args) == ("%d sockets", (3,))


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


@pytest.mark.parametrize(
    ("line", "masked"),
    [
        # Tornado decodes a parameter's name before the handlers read it: so does the mask.
        ("GET /lobby/?%74oken=abc.def.ghi (::1)", "GET /lobby/?%74oken=******** (::1)"),
        ("GET /lobby/?tok%65n=s3cr3t&since=4", "GET /lobby/?tok%65n=********&since=4"),
        ("GET /hq/?%69%6E%76%69%74%65=AAAA", "GET /hq/?%69%6E%76%69%74%65=********"),
        ("GET /hq/?%49nvite=AAAA", "GET /hq/?%49nvite=********"),
        ("GET /lobby/?token=%61%62%63", "GET /lobby/?token=********"),
        ("GET /lobby/?t%6Fkens=4", "GET /lobby/?t%6Fkens=4"),
    ],
)
def test_credentials_are_masked_however_their_name_or_value_is_encoded(line, masked):
    assert mask_credentials_in(line) == masked


def test_control_characters_and_line_separators_in_a_record_are_escaped():
    sent = "GET /a\x85b\u2028c\u2029d\re\nf\x00g\x1bh (127.0.0.1)"
    record = logging.LogRecord("tornado.access", logging.WARNING, __file__, 1, "%d %s", (404, sent), None)
    assert ClientTextFilter().filter(record)
    assert record.getMessage() == "404 GET /a\\x85b\\u2028c\\u2029d\\x0de\\x0af\\x00g\\x1bh (127.0.0.1)"
    assert record.getMessage().splitlines() == [record.getMessage()]


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

"""Tokens and invites travel in URLs; the log shows URLs: what server.py logs never holds a credential."""

from __future__ import annotations

import logging
import time
import urllib.request

import pytest

from rooms.logmask import CredentialsFilter, mask_credentials_in
from tests.processes import ServerProcess
from tests.tokens import SECRET, claims, hs256


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
    assert CredentialsFilter().filter(record) and record.getMessage() == "200 GET /?token=********"
    plain = logging.LogRecord("rooms", logging.INFO, __file__, 1, "%d sockets", (3,), None)
    assert CredentialsFilter().filter(plain) and (plain.msg, plain.args) == ("%d sockets", (3,))


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

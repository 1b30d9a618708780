"""Tokens and invites travel in URLs; the log shows URLs: what server.py logs never holds a credential, nor
a control character or line break that a client sent."""

from __future__ import annotations

import logging

import pytest

from rooms.service.logmask import ClientTextFilter, mask_credentials_in


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

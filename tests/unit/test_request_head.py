"""A connection's first head (``rooms.web.request_head``): read the cheap way where it is plain, and the
same as Tornado reads it in every case: the same fields under every spelling of their names, the same
joined values, and no answer where Tornado's parser would refuse the head."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tornado.httputil import HTTPHeaders, HTTPInputError, parse_request_start_line

from rooms.web.request_head import END_OF_HEAD, Headers, RequestHead, end_of_head, parse_head

pytestmark = pytest.mark.unit

PLAIN = (
    b"GET /chat/lobby/?since=abc&features=presence HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"User-Agent:  a b\t\r\nX-Empty:\r\n\r\n"
)


def tornado_head(data: bytes) -> tuple[tuple[str, str, str], HTTPHeaders] | None:
    """What Tornado's HTTP/1 connection makes of a head (``HTTP1Connection._parse_headers``)."""
    text = data.decode("latin1").lstrip("\r\n")
    eol = text.find("\n")
    try:
        return tuple(parse_request_start_line(text[:eol].rstrip("\r"))), HTTPHeaders.parse(text[eol:])  # type: ignore[return-value]
    except HTTPInputError:
        return None


def assert_read_as_tornado_reads(data: bytes) -> RequestHead | None:
    head = parse_head(data)
    expected = tornado_head(data)
    if expected is None:
        assert head is None
        return None
    assert head is not None
    (method, uri, version), headers = expected
    assert (head.method, head.uri, head.version) == (method, uri, version)
    assert (head.path, head.query) == uri.partition("?")[::2]
    for name in {*headers, "Host", "Sec-Websocket-Key", "Sec-WebSocket-Version", "X-Missing"}:
        for spelling in (name, name.lower(), name.upper()):
            assert (spelling in head.headers) == (spelling in headers)
            assert head.headers.get(spelling) == headers.get(spelling)
            assert head.headers.get_list(spelling) == headers.get_list(spelling)
            if spelling in headers:
                assert head.headers[spelling] == headers[spelling]
    return head


def test_a_plain_handshake_is_read_as_tornado_reads_it() -> None:
    head = assert_read_as_tornado_reads(PLAIN)
    assert head is not None
    assert (head.path, head.query) == ("/chat/lobby/", "since=abc&features=presence")
    assert head.headers["sec-websocket-version"] == "13"
    assert head.headers.get("User-Agent") == "a b"  # spaces and tabs around a value are not part of it
    assert head.headers.get("X-Empty") == ""


@pytest.mark.parametrize(
    "data",
    [
        b"\r\n" + PLAIN,  # an empty line before the request
        PLAIN.replace(b"\r\n", b"\n"),  # bare LF line ends
        PLAIN.replace(b"Upgrade: websocket\r\n", b"Upgrade: websocket\r\nX-A: 1\r\nx-a: 2\r\n"),  # sent twice
        PLAIN.replace(b"X-Empty:", b"X-Empty: a\x00b"),  # a control character in a value
        PLAIN.replace(b"X-Empty:", b"X Empty:"),  # a space in a name
        PLAIN.replace(b"X-Empty:", b" X-Empty:"),  # a folded line
        PLAIN.replace(b"X-Empty:", b"X-Empty: \xe9t\xe9"),  # obs-text, which Tornado takes
        PLAIN.replace(b"X-Empty:", b"X-Empty: a\rb"),  # a CR inside a line
        PLAIN.replace(b"X-Empty:\r\n", b"No colon\r\n"),
        PLAIN.replace(b"HTTP/1.1", b"HTTP/2.0", 1),
        PLAIN.replace(b"HTTP/1.1", b"HTTP/1.0", 1),
        PLAIN.replace(b"GET ", b"GET  ", 1),
        PLAIN.replace(b"HTTP/1.1\r\n", b"HTTP/1.1\r\r\n", 1),
    ],
)
def test_an_unusual_head_is_read_as_tornado_reads_it(data: bytes) -> None:
    assert_read_as_tornado_reads(data)


def test_fields_sent_twice_are_joined_as_tornado_joins_them() -> None:
    head = parse_head(PLAIN.replace(b"Upgrade: websocket\r\n", b"X-Forwarded-For: a\r\nx-forwarded-for: b\r\n"))
    assert head is not None
    assert head.headers.get("X-Forwarded-For") == "a,b"
    assert head.headers.get_list("x-forwarded-for") == ["a", "b"]


def test_a_long_line_that_does_not_match_is_refused_without_backtracking() -> None:
    data = PLAIN.replace(b"X-Empty:", b"X-Empty: a" + b" \t" * 4000 + b"\x01")
    began = time.perf_counter()
    assert parse_head(data) is None
    assert time.perf_counter() - began < 0.5  # quadratic backtracking takes seconds on 8 KB


FIELD_NAMES = st.sampled_from(["Host", "host", "X-A", "x-a", "Upgrade", "A B", "", "Sec-WebSocket-Key", "é"])
FIELD_TEXT = st.text(alphabet=st.sampled_from("ab:, \t\x00\x7f\xe9\r\n=/"), max_size=12)
LINE_ENDS = st.sampled_from(["\r\n", "\n", "\r\r\n"])


@given(
    st.sampled_from(["GET /chat/lobby/ HTTP/1.1", "GET /x?a=1 HTTP/1.0", "GET  / HTTP/1.1", "G\xe9T / HTTP/1.1"]),
    st.lists(st.tuples(FIELD_NAMES, FIELD_TEXT, LINE_ENDS), max_size=6),
    st.sampled_from(["\r\n", "\n"]),
)
@settings(max_examples=400, deadline=None)
def test_any_head_is_read_as_tornado_reads_it(start: str, fields: list[tuple[str, str, str]], end: str) -> None:
    text = start + "\r\n" + "".join(f"{name}:{value}{eol}" for name, value, eol in fields) + end
    assert_read_as_tornado_reads(text.encode("latin1"))


def test_headers_made_from_tornados_answer_every_lookup_as_tornado() -> None:
    parsed = HTTPHeaders.parse("X-A: 1\r\nx-a: 2\r\nHost: h\r\n")
    headers = Headers.of(parsed)
    assert headers["X-A"] == parsed["X-A"] == "1,2"
    assert headers.get_list("x-A") == ["1", "2"]
    assert headers.get("Missing", "d") == "d"


def searched_end_of_head(data: bytes) -> int | None:
    """Where Tornado's stream ends a read of ``END_OF_HEAD`` (``IOStream._find_read_pos``)."""
    match = re.compile(END_OF_HEAD).search(data)
    return None if match is None else match.end()


@pytest.mark.parametrize(
    "data", [b"", b"a", PLAIN, b"a\n\n", b"a\r\n\n", b"a\n\r\n", b"a\r\r\n\r\n", b"\r\n\r\r\n\n", b"a\n\r\r\n"]
)
def test_the_end_of_a_head_is_where_tornados_search_ends(data: bytes) -> None:
    assert end_of_head(data) == end_of_head(bytearray(data)) == searched_end_of_head(data)


@given(st.binary(max_size=40) | st.lists(st.sampled_from([b"\r", b"\n", b"a", b"\r\n"]), max_size=20).map(b"".join))
@settings(max_examples=1000, deadline=None)
def test_the_end_of_any_bytes_head_is_where_tornados_search_ends(data: bytes) -> None:
    assert end_of_head(bytearray(data)) == searched_end_of_head(data)

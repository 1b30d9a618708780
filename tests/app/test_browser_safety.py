"""What docs/security.md promises browsers of what they send, over real HTTP: what POST takes, bodies refused
before they are read, readable errors and no 500 for what a client sends, and WebSocket frames. What every
answer carries is in test_hosts_and_headers.py."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.support.apps import app_config
from tests.support.http import MESSAGES, fetch, post, stored


async def raw_exchange(port: int, head: str, body: bytes = b"", then: list[bytes] | None = None) -> bytes:
    """Send a request's head and the start of its body over a plain TCP socket, then ``then`` chunk by
    chunk; everything the server answers until it closes the connection (within 5 s)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        for chunk in then or []:
            await writer.drain()
            writer.write(chunk)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


def status_and_body(answer: bytes) -> tuple[int, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


# -- POST: JSON only, and only from allowed origins ----------------------------------------------------


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",  # what a foreign page's form sends
        "multipart/form-data; boundary=x",
        "application/jsonp",
        "application/json; charset=latin-1",
        "application/json; version=2",
        "",
    ],
)
async def test_post_that_is_not_json_is_415_and_stores_nothing(http_server, http_port, http_client, content_type):
    response = await post(http_client, http_port, {"Content-Type": content_type})
    assert response.code == 415
    assert "application/json" in json.loads(response.body)["error"]
    assert await stored(http_client, http_port) == []


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "content_type",
    ["application/json", "Application/JSON", "application/json; charset=UTF-8", 'application/json;charset="utf-8"'],
)
async def test_post_takes_json_with_an_optional_utf8_charset(http_server, http_port, http_client, content_type):
    assert (await post(http_client, http_port, {"Content-Type": content_type})).code == 201


@pytest.mark.gen_test
@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:1", "http://localhost"])
async def test_post_from_a_foreign_origin_is_403_and_stores_nothing(http_server, http_port, http_client, origin):
    response = await post(http_client, http_port, {"Content-Type": "application/json", "Origin": origin})
    assert response.code == 403
    assert origin in json.loads(response.body)["error"]
    assert await stored(http_client, http_port) == []


@pytest.mark.gen_test
async def test_post_from_the_servers_own_origin_or_without_one_is_taken(http_server, http_port, http_client):
    own = {"Content-Type": "application/json", "Origin": f"http://127.0.0.1:{http_port}"}
    assert (await post(http_client, http_port, own)).code == 201
    assert (await post(http_client, http_port, {"Content-Type": "application/json"})).code == 201  # curl, bots


@pytest.mark.gen_test
@pytest.mark.parametrize("config", [app_config(server={"allowed_origins": ["https://chat.example.org"]})])
async def test_post_from_an_allowed_origin_is_taken(config, http_server, http_port, http_client):
    headers = {"Content-Type": "application/json", "Origin": "https://chat.example.org"}
    assert (await post(http_client, http_port, headers)).code == 201
    headers["Origin"] = "https://other.example.org"
    assert (await post(http_client, http_port, headers)).code == 403


@pytest.mark.gen_test
async def test_post_applies_the_text_rules_and_stores_nfc(http_server, http_port, http_client):
    json_type = {"Content-Type": "application/json"}
    refused = await post(http_client, http_port, json_type, json.dumps({"handle": "\u0430dmin", "message": "hi"}))
    assert refused.code == 400 and "'handle' mixes scripts" in json.loads(refused.body)["error"]
    refused = await post(http_client, http_port, json_type, json.dumps({"handle": "ann", "message": "\u3164"}))
    assert refused.code == 400 and "'message'" in json.loads(refused.body)["error"]
    taken = await post(http_client, http_port, json_type, json.dumps({"handle": "Zoe\u0308", "message": "cafe\u0301"}))
    assert taken.code == 201
    assert (json.loads(taken.body)["handle"], await stored(http_client, http_port)) == ("Zo\u00eb", ["caf\u00e9"])


# -- bodies over limits.max_frame_bytes ------------------------------------------------------------------


@pytest.mark.gen_test
@pytest.mark.parametrize("announced", [100 * 1024 * 1024, 10**12])
async def test_announced_oversize_body_is_413_before_it_is_read(http_server, http_port, announced):
    head = (
        f"POST {MESSAGES} HTTP/1.1\nHost: 127.0.0.1:{http_port}\nContent-Type: application/json\n"
        f"Content-Length: {announced}\n"
    )
    # Only a few bytes of the body are ever sent: the answer cannot wait for the rest.
    answer = await raw_exchange(http_port, head, b'{"handle": ')
    status, body = status_and_body(answer)
    assert status == 413 and "65536" in body["error"]
    assert answer.count(b"HTTP/1.1") == 1  # one answer, then the connection is closed


@pytest.mark.gen_test
@pytest.mark.parametrize("config", [app_config(limits={"max_frame_bytes": 1000})])
async def test_chunked_body_is_413_once_it_passes_the_limit(config, http_server, http_port, http_client):
    head = (
        f"POST {MESSAGES} HTTP/1.1\nHost: 127.0.0.1:{http_port}\nContent-Type: application/json\n"
        "Transfer-Encoding: chunked\n"
    )
    text = json.dumps({"handle": "ann", "message": "x" * 1100}).encode()
    answer = await raw_exchange(http_port, head, chunk(text[:600]), then=[chunk(text[600:])])
    status, body = status_and_body(answer)
    assert status == 413 and "1000" in body["error"]
    assert await stored(http_client, http_port) == []


@pytest.mark.gen_test
@pytest.mark.parametrize("config", [app_config(limits={"max_frame_bytes": 1000})])
async def test_chunked_body_within_the_limit_is_stored(config, http_server, http_port, http_client):
    head = (
        f"POST {MESSAGES} HTTP/1.1\nHost: 127.0.0.1:{http_port}\nContent-Type: application/json\n"
        "Transfer-Encoding: chunked\nConnection: close\n"
    )
    text = json.dumps({"handle": "ann", "message": "x" * 900}).encode()
    answer = await raw_exchange(http_port, head, chunk(text[:500]), then=[chunk(text[500:]), b"0\r\n\r\n"])
    assert status_and_body(answer)[0] == 201
    assert await stored(http_client, http_port) == ["x" * 900]


# -- error texts ---------------------------------------------------------------------------------------


@pytest.mark.gen_test
@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("before=a%3Cb", "'before' is not a message id: 'a<b'"),
        ("after=%3C%2Fscript%3E", "'after' is not a message id: '</script>'"),
        # Tornado refuses a reason holding "<" or anything past Latin-1 for the status line ("Unknown").
        ("limit=%3C", "'limit' must be a whole number from 1 to 200, not '<'"),
        ("limit=%E2%80%99", "'limit' must be a whole number from 1 to 200, not '\u2019'"),
    ],
)
async def test_api_errors_are_readable_whatever_the_query_holds(http_server, http_port, http_client, query, names):
    response = await fetch(http_client, http_port, f"{MESSAGES}?{query}")
    assert response.code == 400
    assert json.loads(response.body)["error"] == names


# -- no 500 for what a client sends ----------------------------------------------------------------------


@pytest.mark.gen_test
async def test_a_limit_of_thousands_of_digits_is_400_not_500(http_server, http_port, http_client):
    # int() refuses a string of over 4300 digits with a ValueError.
    response = await fetch(http_client, http_port, f"{MESSAGES}?limit={'1' * 5000}")
    assert response.code == 400
    assert json.loads(response.body)["error"] == f"'limit' must be a whole number from 1 to 200, not '{'1' * 20}...'"
    padded = await fetch(http_client, http_port, f"{MESSAGES}?limit={'0' * 5000}7")
    assert padded.code == 200


@pytest.mark.gen_test
@pytest.mark.parametrize("path", ["/static/rooms.css%00.js", "/static/%00", "/static/room/%00/x.js"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_a_static_path_with_a_null_byte_is_404_not_500(http_server, http_port, http_client, path, method):
    response = await fetch(http_client, http_port, path, method=method)
    assert response.code == 404


# -- WebSocket frames ------------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_an_unmasked_client_frame_fails_the_connection_with_1002(http_server, http_port, http_client):
    reader, writer = await asyncio.open_connection("127.0.0.1", http_port)
    try:
        writer.write(
            f"GET /chat/lobby/ HTTP/1.1\r\nHost: 127.0.0.1:{http_port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
        message = json.dumps({"handle": "ann", "message": "unmasked"}).encode()
        writer.write(bytes([0x81, len(message)]) + message)  # FIN + text, and no mask bit
        frame = await asyncio.wait_for(reader.read(), 5)  # until the server closes
    finally:
        writer.close()
    assert frame[0] == 0x88  # a close frame, and nothing before it (the message was not taken)
    assert int.from_bytes(frame[2:4], "big") == 1002
    assert await stored(http_client, http_port) == []

"""The handshake as the server reads it: a first head however it arrives, what follows it, the answers
the server writes itself (101 and 429), and a later request of a kept-alive connection that upgrades."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct

import pytest

from rooms.config.model import Config
from rooms.web.request_stream import FIRST_READ_CHUNK_BYTES
from tests.support.apps import app_config
from tests.support.clients import connect, receive_json

ROOM = "lobby"


@pytest.fixture
def config() -> Config:
    return app_config(limits={"connections_per_address": 2})


def handshake(port: int, path: str = f"/chat/{ROOM}/", extra: str = "") -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode()


def masked_text(text: str) -> bytes:
    payload = text.encode()
    assert len(payload) < 65536
    mask = os.urandom(4)
    length = (
        bytes([0x80 | len(payload)]) if len(payload) < 126 else bytes([0x80 | 126]) + struct.pack("!H", len(payload))
    )
    return bytes([0x81]) + length + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def open_connection(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return reader, writer


async def answer_head(reader: asyncio.StreamReader) -> tuple[str, list[tuple[str, str]]]:
    """An answer's status line and its headers, in order."""
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).decode("latin-1")
    status, *lines = head.split("\r\n")[:-2]
    return status, [(name, value) for name, _, value in (line.partition(": ") for line in lines)]


async def upgraded_after_sending(port: int, sent: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection that sent ``sent`` (a head, and whatever follows it) and was answered 101."""
    reader, writer = await open_connection(port)
    writer.write(sent)
    status, _ = await answer_head(reader)
    assert status == "HTTP/1.1 101 Switching Protocols"
    return reader, writer


async def text_frame(reader: asyncio.StreamReader) -> dict[str, object]:
    opcode, length = await asyncio.wait_for(reader.readexactly(2), 5)
    assert opcode & 0x0F == 0x1  # server frames are never masked
    if length == 126:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
    return json.loads(await reader.readexactly(length))  # type: ignore[no-any-return]


async def say_and_hear(port: int, writer: asyncio.StreamWriter, reader: asyncio.StreamReader, text: str) -> None:
    """A message the socket sends reaches the room (another socket of it) and comes back to it."""
    listener = await connect(port, ROOM)
    writer.write(masked_text(json.dumps({"handle": "ann", "message": text})))
    assert (await receive_json(listener))["message"] == text
    assert (await text_frame(reader))["message"] == text
    listener.close()


@pytest.mark.gen_test(timeout=20)
async def test_the_101_carries_the_headers_of_every_answer_and_no_others(http_server, http_port):
    reader, writer = await open_connection(http_port)
    writer.write(handshake(http_port))
    status, headers = await answer_head(reader)
    assert status == "HTTP/1.1 101 Switching Protocols"
    assert [name for name, _ in headers] == [
        "Date",
        "Content-Security-Policy",
        "X-Content-Type-Options",
        "Referrer-Policy",
        "Upgrade",
        "Connection",
        "Sec-Websocket-Accept",
        "Vary",
    ]
    writer.close()


@pytest.mark.gen_test(timeout=20)
async def test_the_101_to_a_url_with_a_credential_may_not_be_cached(http_server, http_port):
    reader, writer = await open_connection(http_port)
    # Named as a credential whatever its case, though only ?token= is read as one.
    writer.write(handshake(http_port, f"/chat/{ROOM}/?TOKEN=abc"))
    status, headers = await answer_head(reader)
    assert status.startswith("HTTP/1.1 101 ") and ("Cache-Control", "no-store") in headers
    writer.close()


@pytest.mark.gen_test(timeout=20)
async def test_a_head_split_over_many_packets_is_answered_once_whole(http_server, http_port):
    reader, writer = await open_connection(http_port)
    request = handshake(http_port)
    for start in range(0, len(request), 7):
        writer.write(request[start : start + 7])
        await writer.drain()
        await asyncio.sleep(0.005)  # each piece its own packet
    status, _ = await answer_head(reader)
    assert status == "HTTP/1.1 101 Switching Protocols"
    await say_and_hear(http_port, writer, reader, "whole")
    writer.close()


@pytest.mark.gen_test(timeout=20)
async def test_a_head_sent_after_its_connection_was_accepted_is_answered(http_server, http_port):
    early_reader, early_writer = await open_connection(http_port)
    # Connections are accepted in the order they were made: once a later one is answered, the early one
    # has been accepted, and its head is waited for.
    later_reader, later_writer = await open_connection(http_port)
    later_writer.write(handshake(http_port))
    assert (await answer_head(later_reader))[0] == "HTTP/1.1 101 Switching Protocols"
    early_writer.write(handshake(http_port))
    status, _ = await answer_head(early_reader)
    assert status == "HTTP/1.1 101 Switching Protocols"
    early_writer.write(masked_text(json.dumps({"handle": "ann", "message": "late"})))
    assert (await text_frame(early_reader))["message"] == "late"  # read, and back to its sender
    assert (await text_frame(later_reader))["message"] == "late"
    later_writer.close()
    early_writer.close()


@pytest.mark.gen_test(timeout=20)
async def test_frames_sent_with_the_head_are_read_after_it(http_server, http_port):
    listener = await connect(http_port, ROOM)
    frame = masked_text(json.dumps({"handle": "ann", "message": "eager"}))
    reader, writer = await upgraded_after_sending(http_port, handshake(http_port) + frame)
    assert (await receive_json(listener))["message"] == "eager"
    assert (await text_frame(reader))["message"] == "eager"
    writer.close()


@pytest.mark.gen_test(timeout=20)
async def test_a_frame_sent_with_the_head_and_longer_than_a_first_read_arrives_whole(http_server, http_port):
    listener = await connect(http_port, ROOM)
    text = "\u20ac" * 4000  # 12,000 bytes of UTF-8, over what one of a connection's first reads takes
    frame = masked_text(json.dumps({"handle": "ann", "message": text}, ensure_ascii=False))
    assert len(frame) > FIRST_READ_CHUNK_BYTES
    reader, writer = await upgraded_after_sending(http_port, handshake(http_port) + frame)
    assert (await receive_json(listener))["message"] == text
    assert (await text_frame(reader))["message"] == text
    listener.close()
    writer.close()


@pytest.mark.gen_test(timeout=20)
async def test_frames_after_a_head_that_fills_a_first_read_are_read_from_the_socket(http_server, http_port):
    # The head's read takes exactly the head: the frames behind it are still in the socket, not in what the
    # server has read, when it waits for the first of them.
    listener = await connect(http_port, ROOM)
    head = handshake(http_port, extra="X-Padding: \r\n")
    head = handshake(http_port, extra="X-Padding: " + "a" * (FIRST_READ_CHUNK_BYTES - len(head)) + "\r\n")
    assert len(head) == FIRST_READ_CHUNK_BYTES
    first, second = (masked_text(json.dumps({"handle": "ann", "message": text})) for text in ("first", "second"))
    # The second's header split: it is waited for across two reads.
    reader, writer = await upgraded_after_sending(http_port, head + first + second[:1])
    assert (await receive_json(listener))["message"] == "first"
    writer.write(second[1:])
    assert (await receive_json(listener))["message"] == "second"
    assert [(await text_frame(reader))["message"] for _ in range(2)] == ["first", "second"]
    listener.close()
    writer.close()


@pytest.mark.gen_test(timeout=20)
async def test_a_head_over_8_kib_on_the_socket_route_is_answered_431(http_server, http_port):
    reader, writer = await open_connection(http_port)
    writer.write(handshake(http_port, extra="X-Padding: " + "a" * 9 * 1024 + "\r\n"))
    status, headers = await answer_head(reader)
    assert status == "HTTP/1.1 431 Request Header Fields Too Large" and ("Connection", "close") in headers
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


@pytest.mark.gen_test(timeout=20)
async def test_a_kept_alive_connection_may_upgrade_on_a_later_request(http_server, http_port):
    reader, writer = await open_connection(http_port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    status, headers = await answer_head(reader)
    assert status == "HTTP/1.1 200 OK"
    await reader.readexactly(int(dict(headers)["Content-Length"]))
    writer.write(handshake(http_port))
    status, _ = await answer_head(reader)
    assert status == "HTTP/1.1 101 Switching Protocols"
    await say_and_hear(http_port, writer, reader, "later")
    writer.close()


@pytest.mark.gen_test(timeout=20)
async def test_a_429_is_answered_as_every_refusal_and_the_connection_serves_its_next_request(http_server, http_port):
    held = [await open_connection(http_port) for _ in range(2)]  # the address's limit
    for reader, writer in held:
        writer.write(handshake(http_port))
        assert (await answer_head(reader))[0] == "HTTP/1.1 101 Switching Protocols"
    reader, writer = await open_connection(http_port)
    writer.write(handshake(http_port, f"/chat/{ROOM}/?token="))
    status, headers = await answer_head(reader)
    assert status == "HTTP/1.1 429 too many connections from this address"
    assert [name for name, _ in headers] == [
        "Content-Type",
        "Date",
        "Content-Security-Policy",
        "X-Content-Type-Options",
        "Referrer-Policy",
        "Cache-Control",
        "Content-Length",
        "Vary",
    ]
    body = await reader.readexactly(int(dict(headers)["Content-Length"]))
    reason = "429: too many connections from this address"
    assert body == f"<html><title>{reason}</title><body>{reason}</body></html>".encode()
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert (await answer_head(reader))[0] == "HTTP/1.1 200 OK"
    for _, held_writer in [*held, (reader, writer)]:
        held_writer.close()

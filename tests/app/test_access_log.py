"""What a request and a socket's end write to the log: the records the application hands its loggers, with
the fields both log formats show (method, path masked, status, duration, bytes, client, user agent; a
socket's room, duration, close code and reason, frames sent and received)."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from rooms.protocol import text_frame
from rooms.service.logformat import formatter_for
from rooms.web.chat_socket import ChatSocket
from tests.support.clients import connect, raw_handshake, read_until_close_frame, receive_json, send_json, wait_closed
from tests.support.logrecords import Records, records_of
from tests.support.waiting import eventually

INVITE = "AbCdEfGhIjKlMnOpQrStUvWxYz012345"
ACCESS_FIELDS = ("method", "path", "status", "duration_ms", "bytes", "client", "user_agent")
SOCKET_FIELDS = ("room", "client", "duration_s", "close_code", "close_reason", "frames_sent", "frames_received")


@pytest.fixture
def logged() -> Iterator[Records]:
    with records_of("tornado.access", "rooms.socket") as records:
        yield records


def fields_of(record: logging.LogRecord, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(record, name) for name in names}


def is_access_to(path: str):
    return lambda record: record.name == "tornado.access" and record.path.startswith(path)


def is_socket_end(record: logging.LogRecord) -> bool:
    return record.name == "rooms.socket"


@pytest.mark.gen_test
async def test_an_access_line_has_the_requests_fields_and_no_credential(http_server, http_port, http_client, logged):
    response = await http_client.fetch(
        f"http://127.0.0.1:{http_port}/api/rooms/lobby/messages?limit=5&invite={INVITE}",
        headers={"User-Agent": "observer/1.0", "X-Forwarded-For": "203.0.113.9"},
        decompress_response=False,
        raise_error=False,
    )
    line = await logged.first(is_access_to("/api/rooms/lobby/messages"))
    fields = fields_of(line, ACCESS_FIELDS)
    duration = fields.pop("duration_ms")
    assert fields == {
        "method": "GET",
        "path": "/api/rooms/lobby/messages?limit=5&invite=********",
        "status": response.code,
        "bytes": len(response.body),
        "client": "203.0.113.9",  # as resolved: the loopback proxy is trusted by default
        "user_agent": "observer/1.0",
    }
    assert isinstance(duration, float) and duration >= 0
    # Both formats show every field; neither shows the invite.
    text = formatter_for("text").format(line)
    assert f"{response.code} GET /api/rooms/lobby/messages?limit=5&invite=******** (203.0.113.9) " in text
    assert f' {len(response.body)} bytes "observer/1.0"' in text and INVITE not in text
    as_json = json.loads(formatter_for("json").format(line))
    assert {name: as_json[name] for name in ACCESS_FIELDS} == {**fields, "duration_ms": duration}


@pytest.mark.gen_test
async def test_bytes_are_those_sent_compressed(http_server, http_port, http_client, logged):
    response = await http_client.fetch(
        f"http://127.0.0.1:{http_port}/static/rooms.js", headers={"Accept-Encoding": "gzip"}, decompress_response=False
    )
    assert response.headers.get("Content-Encoding") == "gzip"
    line = await logged.first(is_access_to("/static/rooms.js"))
    assert line.bytes == len(response.body) and line.status == 200


@pytest.mark.gen_test
async def test_a_sockets_end_closed_by_its_client(http_server, http_port, logged):
    ws = await connect(http_port, "lobby", headers={"User-Agent": "observer/1.0"})
    for text in ("one", "two"):
        await send_json(ws, {"handle": "ann", "message": text})
    assert [(await receive_json(ws))["message"] for _ in range(2)] == ["one", "two"]
    ws.close(1000, "bye")
    end = await logged.first(is_socket_end)
    fields = fields_of(end, SOCKET_FIELDS)
    duration = fields.pop("duration_s")
    assert fields == {
        "room": "lobby",
        "client": "127.0.0.1",
        "close_code": 1000,
        "close_reason": "bye",
        "frames_sent": 2,
        "frames_received": 2,
    }
    assert isinstance(duration, float) and duration >= 0
    text = formatter_for("text").format(end)
    assert "socket closed: room lobby, 127.0.0.1, " in text and "code 1000 'bye', frames sent 2, received 2" in text
    as_json = json.loads(formatter_for("json").format(end))
    assert {name: as_json[name] for name in SOCKET_FIELDS} == {**fields, "duration_s": duration}
    handshake = await logged.first(is_access_to("/chat/lobby/"))
    assert handshake.status == 101 and handshake.user_agent == "observer/1.0"


@pytest.mark.gen_test
async def test_a_sockets_end_closed_by_the_server_has_its_code_and_reason(http_server, http_port, app, logged):
    ws = await connect(http_port, "lobby")
    burst = app.deps["site"].burst
    for _ in range(burst + 1):  # one invalid frame more than the burst closes it with 1008
        await ws.write_message("not json")
    for _ in range(burst):
        assert (await receive_json(ws))["type"] == "error"
    assert await wait_closed(ws) == 1008
    end = await logged.first(is_socket_end)
    assert (end.close_code, end.close_reason) == (1008, "too many invalid frames")
    assert (end.frames_sent, end.frames_received) == (burst, burst + 1)


@pytest.mark.gen_test
async def test_a_socket_refused_by_the_protocol_and_one_that_vanished(http_server, http_port, logged):
    refused = await raw_handshake(http_port, "/chat/lobby/")
    await asyncio.get_running_loop().sock_sendall(refused, b"\x81\x02hi")  # a client frame not masked
    assert await read_until_close_frame(refused) == 1002
    refused.close()
    end = await logged.first(is_socket_end)
    assert (end.close_code, end.close_reason) == (1002, "client frames must be masked")
    gone = await raw_handshake(http_port, "/chat/vanished/")
    gone.close()  # no close frame at all
    end = await logged.first(lambda record: is_socket_end(record) and record.room == "vanished")
    assert (end.close_code, end.close_reason, end.frames_received) == (1006, "", 0)


@pytest.mark.gen_test
async def test_a_frame_to_a_stream_closed_before_its_connection_heard_is_dropped_and_not_counted(
    http_server, http_port, app, logged
):
    await connect(http_port, "closing")
    await eventually(lambda: app.hub.fanout.online("closing") == 1)
    (chat_socket,) = [o for o in gc.get_objects() if isinstance(o, ChatSocket) and o.site is app.deps["site"]]
    # As a failed write closes it: the connection hears of it only in a later turn of the loop.
    chat_socket.connection.stream.close()
    chat_socket.send_frames(text_frame('{"type":"gap"}'))
    end = await logged.first(is_socket_end)
    assert (end.room, end.close_code, end.frames_sent) == ("closing", 1006, 0)

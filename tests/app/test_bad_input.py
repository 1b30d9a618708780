"""Every bad input docs/protocol.md names, over a real socket: the named answer, and the server keeps
serving the sender and everyone else."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from tests.support.apps import app_config
from tests.support.clients import (
    connect,
    raw_handshake,
    read_until_close_frame,
    receive_json,
    send_json,
    wait_closed,
)
from tests.support.messages import post
from tests.support.waiting import eventually


@pytest.fixture
def config():
    return app_config(
        limits={
            "burst": 3,
            "messages_per_second": 0.5,
            "max_frame_bytes": 2048,
            "max_handle_chars": 10,
            "max_message_chars": 1200,
            "send_buffer_bytes": 65536,
        }
    )


async def assert_still_serving(ws, bystander) -> None:
    """Both sockets hear the sender's next message, and hear it next: a marker, so nothing that went
    wrong before it (an error meant for the sender alone, say) reached the bystander."""
    await send_json(ws, {"handle": "ann", "message": "still here"})
    assert (await receive_json(ws))["message"] == "still here"
    assert (await receive_json(bystander))["message"] == "still here"


@pytest.mark.gen_test
@pytest.mark.parametrize(
    ("frame", "code", "mentions"),
    [
        ("this is not json", "invalid_json", "JSON"),
        ('["a list"]', "invalid_message", "object"),
        ('{"message": "no handle"}', "invalid_message", "'handle'"),
        ('{"handle": "ann", "message": 12}', "invalid_message", "'message'"),
        ('{"handle": "", "message": "hi"}', "invalid_message", "'handle'"),
        ('{"handle": "ann", "message": ""}', "invalid_message", "'message'"),
        ('{"handle": "a-very-long-handle", "message": "hi"}', "invalid_message", "'handle'"),
        (json.dumps({"handle": "ann", "message": "x" * 1201}), "invalid_message", "'message'"),
        ('{"handle": "an\\u0000n", "message": "hi"}', "invalid_message", "'handle'"),
        ('{"handle": "\\u202eann", "message": "hi"}', "invalid_message", "'handle'"),
        ('{"handle": "\\u0430dmin", "message": "hi"}', "invalid_message", "'handle' mixes scripts"),
        ('{"handle": "\\u3164", "message": "hi"}', "invalid_message", "'handle'"),
        ('{"handle": "ann", "message": "\\u200b\\u200b"}', "invalid_message", "'message'"),
    ],
)
async def test_bad_frame_gets_named_error_and_socket_stays_open(http_server, http_port, frame, code, mentions):
    ws, bystander = await connect(http_port, "lobby"), await connect(http_port, "lobby")
    await ws.write_message(frame)
    error = await receive_json(ws)
    assert error["type"] == "error" and error["code"] == code
    assert mentions in error["error"]
    await assert_still_serving(ws, bystander)


@pytest.mark.gen_test
async def test_binary_frame_is_invalid_message_and_socket_stays_open(http_server, http_port):
    ws, bystander = await connect(http_port, "lobby"), await connect(http_port, "lobby")
    await ws.write_message(b'{"handle": "ann", "message": "hi"}', binary=True)
    assert (await receive_json(ws))["code"] == "invalid_message"
    await assert_still_serving(ws, bystander)


@pytest.mark.gen_test
async def test_text_frame_that_is_not_utf8_fails_only_its_own_connection(http_server, http_port):
    bystander = await connect(http_port, "lobby")
    sock = await raw_handshake(http_port, "/chat/lobby/")
    payload = b'{"handle": "ann", "message": "\xff\xfe"}'
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[n % 4] for n, byte in enumerate(payload))
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(sock, bytes([0x81, 0x80 | len(payload)]) + mask + masked)
    received = b""
    while chunk := await asyncio.wait_for(loop.sock_recv(sock, 4096), 5):
        received += chunk
    assert b"error" not in received  # failed, as RFC 6455 says, not answered
    sock.close()
    await assert_still_serving(await connect(http_port, "lobby"), bystander)


@pytest.mark.gen_test
async def test_oversize_frame_closes_with_1009_and_others_keep_chatting(http_server, http_port):
    big, bystander = await connect(http_port, "lobby"), await connect(http_port, "lobby")
    await big.write_message(json.dumps({"handle": "ann", "message": "x" * 3000}))
    assert await wait_closed(big) == 1009
    await assert_still_serving(await connect(http_port, "lobby"), bystander)


@pytest.mark.gen_test
async def test_rate_limit_refuses_beyond_burst_without_storing(http_server, http_port, http_client):
    ws = await connect(http_port, "lobby")
    for n in range(4):
        await send_json(ws, {"handle": "ann", "message": f"m{n}"})
    replies = [await receive_json(ws) for _ in range(4)]
    assert [r["type"] for r in replies] == ["message", "message", "message", "error"]
    assert replies[3]["code"] == "rate_limited"
    response = await http_client.fetch(f"http://127.0.0.1:{http_port}/api/rooms/lobby/messages")
    assert [m["message"] for m in json.loads(response.body)["messages"]] == ["m0", "m1", "m2"]


@pytest.mark.gen_test
async def test_sender_that_keeps_flooding_is_closed_with_1008(http_server, http_port):
    ws = await connect(http_port, "flooded")
    for n in range(12):
        await send_json(ws, {"handle": "ann", "message": f"flood {n}"})
    assert await wait_closed(ws) == 1008
    await assert_still_serving(await connect(http_port, "flooded"), await connect(http_port, "flooded"))


@pytest.mark.gen_test(timeout=30)
async def test_reader_that_stops_reading_is_closed_with_1013_and_others_get_everything(http_server, http_port, app):
    stuck = await raw_handshake(http_port, "/chat/lobby/")
    reader = await connect(http_port, "lobby")
    await eventually(lambda: app.hub.online("lobby") >= 2)
    text = "y" * 1000
    count = 3000
    for n in range(count):
        await post(app.hub, "lobby", "flood", f"{n} {text}")
        if n % 100 == 0:
            await asyncio.sleep(0)
    received = [await receive_json(reader) for _ in range(count)]
    assert [int(m["message"].split()[0]) for m in received] == list(range(count))
    assert app.hub.online("lobby") == 1
    assert await read_until_close_frame(stuck) == 1013
    stuck.close()


@pytest.mark.gen_test
async def test_handle_with_html_is_stored_verbatim_and_escaped_on_the_page(http_server, http_port, http_client):
    ws = await connect(http_port, "lobby")
    evil = {"handle": "<b>x</b>", "message": "<script>alert('x')</script> & \"q\""}
    await send_json(ws, evil)
    echoed = await receive_json(ws)
    assert (echoed["handle"], echoed["message"]) == (evil["handle"], evil["message"])
    page = (await http_client.fetch(f"http://127.0.0.1:{http_port}/lobby/")).body.decode()
    assert "<script>alert" not in page and "<b>x</b>" not in page
    assert "&lt;script&gt;alert(" in page and "&lt;b&gt;x&lt;/b&gt;" in page

"""End to end over real WebSockets: live chat, order, recovery, dedup, origins."""

from __future__ import annotations

import asyncio
import json
from functools import partial

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest, HTTPResponse
from tornado.websocket import websocket_connect

from rooms.room import fanout as fanout_module
from tests.support.apps import app_config
from tests.support.clients import assert_next_is_marker, connect, receive_json, receive_messages, send_json
from tests.support.messages import post as post_message


async def post(http_client, port: int, room: str, payload: dict) -> HTTPResponse:
    return await http_client.fetch(
        f"http://127.0.0.1:{port}/api/rooms/{room}/messages",
        method="POST",
        body=json.dumps(payload),
        headers={"Content-Type": "application/json"},
        raise_error=False,
    )


@pytest.mark.gen_test
async def test_message_round_trip_reaches_everyone_in_the_room(http_server, http_port):
    ann, bob = await connect(http_port, "lobby"), await connect(http_port, "lobby")
    await send_json(ann, {"handle": "ann", "message": "hello"})
    for ws in (ann, bob):
        message = await receive_json(ws)
        assert message["type"] == "message"
        assert (message["room"], message["handle"], message["message"]) == ("lobby", "ann", "hello")
        assert isinstance(message["id"], str) and message["timestamp"].endswith("+00:00")
        assert "client_id" not in message


@pytest.mark.gen_test
async def test_type_message_field_means_the_same(http_server, http_port):
    ann = await connect(http_port, "lobby")
    await send_json(ann, {"type": "message", "handle": "ann", "message": "typed"})
    assert (await receive_json(ann))["message"] == "typed"


@pytest.mark.gen_test
async def test_rooms_are_isolated(http_server, http_port):
    ann, bob = await connect(http_port, "one"), await connect(http_port, "two")
    await send_json(ann, {"handle": "ann", "message": "only in one"})
    assert (await receive_json(ann))["room"] == "one"
    await assert_next_is_marker(bob)


@pytest.mark.gen_test
async def test_trailing_slash_is_optional_on_the_socket_path(http_server, http_port):
    ws = await websocket_connect(f"ws://127.0.0.1:{http_port}/chat/lobby")
    await send_json(ws, {"handle": "ann", "message": "no slash"})
    assert (await receive_json(ws))["message"] == "no slash"


@pytest.mark.gen_test(timeout=15)
async def test_concurrent_senders_see_one_order_which_is_history(http_server, http_port, http_client):
    clients = [await connect(http_port, "busy") for _ in range(4)]
    await asyncio.gather(
        *(
            send_json(ws, {"handle": f"user{n}", "message": f"{n}-{i}"})
            for n, ws in enumerate(clients)
            for i in range(10)
        )
    )
    received = [[m["id"] for m in await receive_messages(ws, 40)] for ws in clients]
    assert all(order == received[0] for order in received)
    response = await http_client.fetch(f"http://127.0.0.1:{http_port}/api/rooms/busy/messages?limit=40")
    assert [m["id"] for m in json.loads(response.body)["messages"]] == received[0]
    assert [int(i) for i in received[0]] == sorted(int(i) for i in received[0])


@pytest.mark.gen_test
async def test_post_api_message_is_broadcast(http_server, http_port, http_client):
    ws = await connect(http_port, "lobby")
    response = await post(http_client, http_port, "lobby", {"handle": "bot", "message": "from http"})
    assert response.code == 201
    stored = json.loads(response.body)
    assert await receive_json(ws) == stored
    assert stored["message"] == "from http"


@pytest.mark.gen_test
async def test_resent_client_id_is_stored_once_and_answered_to_the_sender_alone(http_server, http_port, http_client):
    sender, reader = await connect(http_port, "lobby"), await connect(http_port, "lobby")
    frame = {"handle": "ann", "message": "exactly once", "client_id": "k-1"}
    await send_json(sender, frame)
    first = await receive_json(sender)
    assert first["client_id"] == "k-1"
    assert await receive_json(reader) == first
    await send_json(sender, frame)
    assert await receive_json(sender) == first
    marker = await assert_next_is_marker(reader)
    response = await http_client.fetch(f"http://127.0.0.1:{http_port}/api/rooms/lobby/messages")
    assert [m["message"] for m in json.loads(response.body)["messages"]] == ["exactly once", marker["message"]]


@pytest.mark.gen_test
async def test_resent_client_id_after_reconnect_is_stored_once(http_server, http_port):
    first_socket = await connect(http_port, "lobby")
    await send_json(first_socket, {"handle": "ann", "message": "hi", "client_id": "again"})
    original = await receive_json(first_socket)
    first_socket.close()
    second_socket = await connect(http_port, "lobby", since=original["id"])
    await send_json(second_socket, {"handle": "ann", "message": "hi", "client_id": "again"})
    assert await receive_json(second_socket) == original
    await assert_next_is_marker(second_socket)


@pytest.mark.gen_test
async def test_since_replays_what_was_missed_then_goes_live(http_server, http_port):
    reader = await connect(http_port, "lobby")
    writer = await connect(http_port, "lobby")
    await send_json(writer, {"handle": "w", "message": "seen"})
    seen = await receive_json(reader)
    await receive_json(writer)
    reader.close()
    for n in range(3):
        await send_json(writer, {"handle": "w", "message": f"missed {n}"})
        await receive_json(writer)
    back = await connect(http_port, "lobby", since=seen["id"])
    replayed = await receive_messages(back, 3)
    assert [m["message"] for m in replayed] == ["missed 0", "missed 1", "missed 2"]
    await send_json(writer, {"handle": "w", "message": "live"})
    assert (await receive_json(back))["message"] == "live"
    await assert_next_is_marker(back)


@pytest.mark.gen_test
async def test_since_has_no_gap_or_duplicate_while_messages_keep_arriving(http_server, http_port, app):
    room = "steady"
    sent: list[str] = []

    async def keep_sending() -> None:
        for n in range(60):
            result = await post_message(app.hub, room, "tester", f"m{n}")
            sent.append(result.message.id)
            await asyncio.sleep(0.005)

    sender = asyncio.ensure_future(keep_sending())
    await asyncio.sleep(0)
    first = await connect(http_port, room)
    seen = [(await receive_json(first))["id"]]
    first.close()
    resumed = await connect(http_port, room, since=seen[0])
    await sender
    rest = await receive_messages(resumed, len(sent) - sent.index(seen[0]) - 1)
    assert seen + [m["id"] for m in rest] == sent[sent.index(seen[0]) :]
    await assert_next_is_marker(resumed, partial(post_message, app.hub, room, "marker"))


@pytest.mark.gen_test
async def test_since_zero_replays_the_whole_room(http_server, http_port, app):
    for n in range(3):
        await post_message(app.hub, "lobby", "tester", f"m{n}")
    ws = await connect(http_port, "lobby", since="0")
    assert [m["message"] for m in await receive_messages(ws, 3)] == ["m0", "m1", "m2"]


@pytest.mark.gen_test
async def test_invalid_label_refuses_the_handshake(http_server, http_port):
    for path in ["bad.label", "x" * 51, "api", "metrics"]:
        with pytest.raises(HTTPClientError) as caught:
            await websocket_connect(f"ws://127.0.0.1:{http_port}/chat/{path}/")
        assert caught.value.code == 404


@pytest.mark.gen_test
async def test_malformed_since_refuses_the_handshake(http_server, http_port):
    with pytest.raises(HTTPClientError) as caught:
        await connect(http_port, "lobby", since="yesterday")
    assert caught.value.code == 400


@pytest.mark.gen_test
async def test_foreign_origin_is_refused(http_server, http_port):
    with pytest.raises(HTTPClientError) as caught:
        await connect(http_port, "lobby", headers={"Origin": "http://evil.example.com"})
    assert caught.value.code == 403


@pytest.mark.gen_test
async def test_own_host_origin_and_no_origin_are_allowed(http_server, http_port):
    own = await connect(http_port, "lobby", headers={"Origin": f"http://127.0.0.1:{http_port}"})
    bot = await connect(http_port, "lobby")
    await send_json(bot, {"handle": "bot", "message": "hi"})
    assert (await receive_json(own))["message"] == "hi"


@pytest.mark.gen_test
async def test_reverse_proxy_host_is_not_trusted_without_the_allowlist(http_server, http_port):
    # Behind a proxy that rewrites Host, the browser's public origin must be listed explicitly.
    request = HTTPRequest(
        f"ws://127.0.0.1:{http_port}/chat/lobby/",
        headers={"Origin": "https://chat.example.com", "Host": "backend.internal:8000"},
    )
    with pytest.raises(HTTPClientError) as caught:
        await websocket_connect(request)
    assert caught.value.code == 403


class TestAllowedOrigins:
    @pytest.fixture
    def config(self):
        return app_config(server={"allowed_origins": ["https://Chat.Example.com/"]})

    @pytest.mark.gen_test
    @pytest.mark.parametrize("origin", ["https://chat.example.com", "https://chat.example.com:443"])
    async def test_listed_origin_is_allowed(self, http_server, http_port, origin):
        ws = await connect(http_port, "lobby", headers={"Origin": origin})
        await send_json(ws, {"handle": "ann", "message": "via proxy"})
        assert (await receive_json(ws))["message"] == "via proxy"

    @pytest.mark.gen_test
    async def test_unlisted_origin_is_still_refused(self, http_server, http_port):
        with pytest.raises(HTTPClientError) as caught:
            await connect(http_port, "lobby", headers={"Origin": "https://chat.example.org"})
        assert caught.value.code == 403
        with pytest.raises(HTTPClientError) as caught:
            await connect(http_port, "lobby", headers={"Origin": "https://chat.example.com:8443"})
        assert caught.value.code == 403


@pytest.mark.gen_test
async def test_since_from_an_earlier_server_run_gets_gap_then_the_whole_room(http_server, http_port, app):
    await post_message(app.hub, "lobby", "tester", "after restart")
    # An id the memory backend of an earlier run handed out: its history is gone with that process.
    ws = await connect(http_port, "lobby", since="1000")
    assert await receive_json(ws) == {"type": "gap"}
    assert (await receive_json(ws))["message"] == "after restart"


@pytest.mark.gen_test
async def test_since_beyond_every_id_gets_gap_then_the_whole_room(http_server, http_port, app):
    stored = await post_message(app.hub, "lobby", "tester", "only one")
    ws = await connect(http_port, "lobby", since=str(int(stored.message.id) + 10))
    assert await receive_json(ws) == {"type": "gap"}
    assert (await receive_json(ws))["message"] == "only one"


@pytest.mark.gen_test
async def test_compression_is_not_negotiated_so_every_socket_gets_the_same_frame_bytes(http_server, http_port):
    offering = await websocket_connect(HTTPRequest(f"ws://127.0.0.1:{http_port}/chat/lobby/"), compression_options={})
    assert offering.headers.get("Sec-WebSocket-Extensions") is None
    await send_json(offering, {"handle": "ann", "message": "plain"})
    assert (await receive_json(offering))["message"] == "plain"


@pytest.mark.gen_test
async def test_a_broadcast_is_encoded_and_framed_once_for_the_whole_room(http_server, http_port, app, monkeypatch):
    sockets = [await connect(http_port, "lobby") for _ in range(5)]
    calls = {"encode_message": 0, "text_frame": 0}

    def counted(name, original):
        def call(*args):
            calls[name] += 1
            return original(*args)

        return call

    monkeypatch.setattr(fanout_module, "encode_message", counted("encode_message", fanout_module.encode_message))
    monkeypatch.setattr(fanout_module, "text_frame", counted("text_frame", fanout_module.text_frame))
    await post_message(app.hub, "lobby", "tester", "to all five")
    for ws in sockets:
        assert (await receive_json(ws))["message"] == "to all five"
    assert calls == {"encode_message": 1, "text_frame": 1}


@pytest.mark.gen_test
async def test_json_nested_too_deeply_is_invalid_json_and_the_socket_stays_open(http_server, http_port):
    ws = await connect(http_port, "lobby")
    await ws.write_message("[" * 20_000 + "]" * 20_000)
    error = await receive_json(ws)
    assert (error["type"], error["code"]) == ("error", "invalid_json")
    await send_json(ws, {"handle": "ann", "message": "still here"})
    assert (await receive_json(ws))["message"] == "still here"

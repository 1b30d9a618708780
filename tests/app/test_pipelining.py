"""A socket's messages are read while earlier ones are still being stored; replies keep the frames' order.

Runs on every backend: on SQL several of a socket's messages then share one commit, on Redis one pipeline.
"""

from __future__ import annotations

import json

import pytest
import tornado.ioloop
import tornado.web

from rooms.config.model import Config
from rooms.room.session import MAX_STORES_IN_FLIGHT
from rooms.web.frame_protocol import FRAME_COST, YIELD_AFTER
from tests.support.apps import app_config
from tests.support.clients import assert_next_is_marker, connect, receive_json, receive_messages


@pytest.fixture
def app(app_on_each_backend: tornado.web.Application) -> tornado.web.Application:
    return app_on_each_backend


@pytest.fixture
def config() -> Config:
    return app_config(limits={"messages_per_second": 10_000, "burst": 10_000})


def send_without_waiting(ws, frames: list[str]) -> None:
    # Written back to back, the frames reach the server in one read: each is taken while the ones
    # before it are still being stored.
    for frame in frames:
        ws.write_message(frame)


@pytest.mark.gen_test(timeout=20)
async def test_messages_sent_back_to_back_are_echoed_once_each_in_order_and_are_history(
    backend_name, app, http_server, http_port, http_client
):
    count = 3 * MAX_STORES_IN_FLIGHT  # more than one socket may have in flight, so reading pauses
    ann, bob = await connect(http_port, "lobby"), await connect(http_port, "lobby")
    send_without_waiting(ann, [json.dumps({"handle": "ann", "message": f"m{n}"}) for n in range(count)])
    for ws in (ann, bob):
        received = await receive_messages(ws, count)
        assert [m["message"] for m in received] == [f"m{n}" for n in range(count)]
        keys = [app.hub.id_key(m["id"]) for m in received]
        assert keys == sorted(set(keys))
    marker = await assert_next_is_marker(ann)
    response = await http_client.fetch(f"http://127.0.0.1:{http_port}/api/rooms/lobby/messages?limit=200")
    stored = [m["message"] for m in json.loads(response.body)["messages"]]
    assert stored == [*(f"m{n}" for n in range(count)), marker["message"]]


@pytest.mark.gen_test(timeout=30)
async def test_more_frames_than_one_turn_reads_are_all_answered_in_order(backend_name, app, http_server, http_port):
    count = YIELD_AFTER // FRAME_COST + 50  # the socket lets the rest of the server run, then reads on
    ann, bob = await connect(http_port, "lobby"), await connect(http_port, "lobby")
    send_without_waiting(ann, [json.dumps({"handle": "ann", "message": f"m{n}"}) for n in range(count)])
    for ws in (ann, bob):
        received = await receive_messages(ws, count)
        assert [m["message"] for m in received] == [f"m{n}" for n in range(count)]
    await assert_next_is_marker(ann)


@pytest.mark.gen_test(timeout=20)
async def test_an_error_is_answered_after_the_messages_sent_before_it(backend_name, http_server, http_port):
    ann = await connect(http_port, "lobby")
    good = [json.dumps({"handle": "ann", "message": f"m{n}"}) for n in range(5)]
    send_without_waiting(ann, [*good, "not json", json.dumps({"handle": "ann", "message": "after"})])
    replies = [await receive_json(ann) for _ in range(7)]
    assert [(r["type"], r.get("message") or r.get("code")) for r in replies] == [
        *(("message", f"m{n}") for n in range(5)),
        ("error", "invalid_json"),
        ("message", "after"),
    ]


@pytest.mark.gen_test(timeout=20)
async def test_a_resent_client_id_among_pipelined_messages_is_stored_once_and_answered_in_turn(
    backend_name, http_server, http_port, http_client
):
    ann = await connect(http_port, "lobby")
    frames = [
        json.dumps({"handle": "ann", "message": "first", "client_id": "c-1"}),
        json.dumps({"handle": "ann", "message": "second", "client_id": "c-2"}),
        json.dumps({"handle": "ann", "message": "first", "client_id": "c-1"}),
    ]
    send_without_waiting(ann, frames)
    replies = [await receive_json(ann) for _ in range(3)]
    assert [(r["message"], r["client_id"]) for r in replies] == [("first", "c-1"), ("second", "c-2"), ("first", "c-1")]
    assert replies[0]["id"] == replies[2]["id"]
    response = await http_client.fetch(f"http://127.0.0.1:{http_port}/api/rooms/lobby/messages")
    assert [m["message"] for m in json.loads(response.body)["messages"]] == ["first", "second"]

"""A socket that was away while its earlier messages changed (docs/protocol.md, "Messages that change",
and "Recovery"): resuming with ``?since=X`` and the change features, it gets, in the room's order, a frame
for each change made after X to a message at or before X, and the messages after X as they now stand; a
socket that asked for none of them gets exactly the messages, as before there were changes. Through the
whole application, on the memory, SQLite and Redis (one server, Sentinel, Cluster) backends (every backend
keeps the contract suite's ``replay`` tests of changes)."""

from __future__ import annotations

import pytest

from tests.support.changes import ANN_KEY
from tests.support.clients import assert_next_is_marker, connect, receive_json, send_json
from tests.support.moderation import moderated_config

ALL = "edits,deletes,reactions"


@pytest.fixture(params=["memory", "sqlite", "redis", "redis-sentinel", "redis-cluster"])
def backend_name(request):
    return request.param


@pytest.fixture
def config():
    return moderated_config()


@pytest.fixture
def app(app_on_each_backend):
    return app_on_each_backend


async def said(ws, text: str, watcher) -> dict:
    await send_json(ws, {"handle": "ann", "message": text, "author_key": ANN_KEY})
    frame = await receive_json(watcher)
    assert frame["message"] == text
    return frame


async def changed(ws, frame: dict, watcher) -> dict:
    await send_json(ws, frame)
    told = await receive_json(watcher)
    assert told["type"] in ("edit", "delete", "reactions"), told
    return told


@pytest.mark.gen_test(timeout=30)
async def test_a_socket_away_while_its_messages_change_catches_up_in_the_room_s_order(http_server, http_port, app):
    ann = await connect(http_port, "lobby")
    await send_json(ann, {"type": "hello", "handle": "ann"})
    watcher = await connect(http_port, "lobby", features=ALL)
    first, second = await said(ann, "one", watcher), await said(ann, "two", watcher)
    since = second["id"]  # the away socket saw both
    edit = await changed(ann, {"type": "edit", "id": first["id"], "message": "one!", "author_key": ANN_KEY}, watcher)
    reactions = await changed(ann, {"type": "react", "id": first["id"], "emoji": "🎉"}, watcher)
    third = await said(ann, "three", watcher)
    await changed(ann, {"type": "edit", "id": third["id"], "message": "three!", "author_key": ANN_KEY}, watcher)
    await changed(ann, {"type": "react", "id": third["id"], "emoji": "👍"}, watcher)
    deletion = await changed(ann, {"type": "delete", "id": second["id"], "author_key": ANN_KEY}, watcher)
    fourth = await said(ann, "four", watcher)

    # Every resuming socket connects before any marker is sent: a marker is a message of the room's log too.
    back = await connect(http_port, "lobby", since=since, features=ALL)
    deletes = await connect(http_port, "lobby", since=since, features="deletes")
    plain = await connect(http_port, "lobby", since=since)
    newest = await connect(http_port, "lobby", since=fourth["id"], features=ALL)
    from_a_change = await connect(http_port, "lobby", since=reactions["at"], features=ALL)
    frames = [await receive_json(back) for _ in range(5)]
    assert frames[:2] == [edit, reactions]
    assert frames[2]["id"] == third["id"] and frames[2]["message"] == "three!" and frames[2]["edited"]
    assert frames[2]["reactions"] == {"👍": 1}
    assert frames[3:] == [deletion, fourth]
    # Asked for deletes only: those frames alone, the messages as they now stand.
    assert [await receive_json(deletes) for _ in range(3)] == [frames[2], deletion, fourth]
    # Asked for none: the messages after X exactly as before there were changes, and nothing more.
    assert [await receive_json(plain) for _ in range(2)] == [frames[2], fourth]
    # From the newest position, nothing; from a change's own position, what followed it.
    assert [await receive_json(from_a_change) for _ in range(3)] == frames[2:]
    marker = await assert_next_is_marker(back)
    for ws in (deletes, plain, newest, from_a_change):
        assert await receive_json(ws) == marker


@pytest.mark.gen_test(timeout=30)
async def test_a_deleted_message_is_never_sent_again_not_even_its_edits(http_server, http_port, app):
    ann = await connect(http_port, "lobby")
    watcher = await connect(http_port, "lobby", features=ALL)
    message = await said(ann, "secret", watcher)
    since = message["id"]
    await changed(ann, {"type": "edit", "id": message["id"], "message": "more secret", "author_key": ANN_KEY}, watcher)
    deletion = await changed(ann, {"type": "delete", "id": message["id"], "author_key": ANN_KEY}, watcher)
    back = await connect(http_port, "lobby", since=since, features=ALL)
    before = await connect(http_port, "lobby", since="0", features=ALL)
    assert await receive_json(back) == deletion
    marker = await assert_next_is_marker(back)
    assert await receive_json(before) == marker  # from before it: it is simply not there

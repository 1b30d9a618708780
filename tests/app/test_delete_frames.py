"""A moderator's deletion over real sockets (docs/protocol.md, "Frames from the server"): a ``delete`` frame
for the sockets that asked for ``deletes``, nothing for the others, and a resend of a deleted message's
client id refused rather than stored again. The deletion itself is the backend's (every backend keeps the
contract suite's ``delete_message`` tests); here on the memory backend."""

from __future__ import annotations

import json

import pytest

from backends.base import Backend
from tests.support.changes import assert_delete_frame
from tests.support.clients import assert_next_is_marker, connect, receive_json, send_json
from tests.support.messages import post


async def deleted_by_a_moderator(backend: Backend, room: str, message_id: str) -> None:
    # Straight to the store, as another process's moderator would: the frames come from its notice alone
    # (the API's own route is tested in test_moderation_api.py).
    assert await backend.delete_message(room, message_id)


@pytest.mark.gen_test
async def test_a_deletion_reaches_the_sockets_that_asked_for_deletes_and_no_other(http_server, http_port, app_backend):
    watcher = await connect(http_port, "lobby", features="deletes")
    seed = await connect(http_port, "lobby")  # the 2016 client: it must never get a frame it did not ask for
    other_room = await connect(http_port, "elsewhere", features="deletes")
    await send_json(seed, {"handle": "ann", "message": "to be deleted"})
    message = await receive_json(watcher)
    assert message["message"] == "to be deleted" and (await receive_json(seed))["id"] == message["id"]
    await deleted_by_a_moderator(app_backend, "lobby", message["id"])
    assert_delete_frame(await receive_json(watcher), message["id"])
    marker = await assert_next_is_marker(seed)
    assert await receive_json(watcher) == marker  # the delete frame once, nothing more
    await assert_next_is_marker(other_room)
    for ws in (watcher, seed, other_room):
        ws.close()


@pytest.mark.gen_test
async def test_a_message_deleted_as_soon_as_stored_reaches_a_socket_before_its_deletion(
    http_server, http_port, app, app_backend
):
    # Broadcasts wait a loop iteration or two to go out together; the deletion must not overtake them.
    watcher = await connect(http_port, "lobby", features="deletes")
    stored = (await post(app.hub, "lobby", "ann", "gone at once")).message
    await deleted_by_a_moderator(app_backend, "lobby", stored.id)
    assert (await receive_json(watcher))["id"] == stored.id
    assert_delete_frame(await receive_json(watcher), stored.id)
    watcher.close()


@pytest.mark.gen_test
async def test_a_resent_client_id_of_a_deleted_message_is_forbidden_on_the_socket_and_the_api(
    http_server, http_port, http_client, app, app_backend
):
    ws = await connect(http_port, "lobby", features="deletes")
    await send_json(ws, {"handle": "ann", "message": "spam", "client_id": "c-1"})
    message = await receive_json(ws)
    await deleted_by_a_moderator(app_backend, "lobby", message["id"])
    assert (await receive_json(ws))["type"] == "delete"
    await send_json(ws, {"handle": "ann", "message": "spam", "client_id": "c-1"})
    error = await receive_json(ws)
    assert (error["type"], error["code"]) == ("error", "forbidden")
    response = await http_client.fetch(
        f"http://127.0.0.1:{http_port}/api/rooms/lobby/messages",
        method="POST",
        body=json.dumps({"handle": "ann", "message": "spam", "client_id": "c-1"}),
        headers={"Content-Type": "application/json"},
        raise_error=False,
    )
    assert response.code == 403 and "deleted" in json.loads(response.body)["error"]
    marker = await assert_next_is_marker(ws)  # the socket stays open, and nothing was stored or broadcast
    assert [m.message for m in (await app.hub.history("lobby", 10, None, None)).messages] == [marker["message"]]
    ws.close()

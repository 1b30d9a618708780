"""The moderation API over real HTTP and sockets (docs/protocol.md, "Moderation"): who may use it, deleting
messages and locking rooms. Bans are in ``test_bans.py``. On the memory backend; the backends keep the
contract suite's moderation tests, and ``test_moderation_processes.py`` runs it across processes and
restarts."""

from __future__ import annotations

import pytest

from tests.support.changes import assert_delete_frame
from tests.support.clients import assert_next_is_marker, connect, receive_json, send_json
from tests.support.messages import post as post_message
from tests.support.moderation import (
    assert_forbidden,
    ban,
    call,
    moderated_config,
    say,
    socket_from,
    texts,
)
from tests.support.tokens import MODERATOR_TOKEN, claims, hs256


@pytest.fixture
def config():
    return moderated_config()


# -- who may ------------------------------------------------------------------------------------------

ROUTES = [
    ("DELETE", "/api/rooms/lobby/messages/1", None),
    ("POST", "/api/bans", {"handle": "spammer", "room": "lobby"}),
    ("POST", "/api/bans", {"handle": "spammer"}),
    ("GET", "/api/bans", None),
    ("DELETE", "/api/bans/1", None),
    ("PATCH", "/api/rooms/lobby", {"locked": True}),
    ("DELETE", "/api/rooms/hq/messages/1", None),
    ("PATCH", "/api/rooms/hq", {"locked": True}),
]
NOT_MODERATORS = {
    "none": None,
    "wrong": "a-wrong-token-that-is-long-enough-0123456789",
    "user": hs256(claims(name="Ann", rooms=["*"])),
    "expired moderator": hs256(claims(mod=True, rooms=["*"], seconds=-60)),
    "other key": hs256(claims(mod=True, rooms=["*"]), secret="another-secret-of-more-than-32-bytes-here"),
}


@pytest.mark.gen_test
@pytest.mark.parametrize("who", sorted(NOT_MODERATORS))
async def test_every_moderation_route_is_401_without_a_moderators_token(http_server, http_port, http_client, who):
    for method, path, payload in ROUTES:
        code, answer = await call(http_client, http_port, method, path, payload, NOT_MODERATORS[who])
        if who == "user" and method == "DELETE" and "/messages/" in path:
            # A user's token may delete the messages its sub wrote: this one names none.
            assert code == 404, (method, path, answer)
            continue
        assert code == 401, (method, path, answer)
        assert answer["error"]
    basic = {"Authorization": f"Basic {MODERATOR_TOKEN}"}
    assert (await call(http_client, http_port, "GET", "/api/bans", headers=basic, token=None))[0] == 401
    code, answer = await call(http_client, http_port, "GET", "/api/bans")
    assert (code, answer) == (200, {"bans": []})  # nothing was banned on the way
    assert (await call(http_client, http_port, "GET", "/api/rooms/lobby"))[1]["locked"] is False


@pytest.mark.gen_test
async def test_a_401_says_how_to_authenticate_and_nothing_is_cached(http_server, http_port, http_client):
    response = await http_client.fetch(f"http://127.0.0.1:{http_port}/api/bans", raise_error=False)
    assert response.code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
    listed = await http_client.fetch(
        f"http://127.0.0.1:{http_port}/api/bans", headers={"Authorization": f"Bearer {MODERATOR_TOKEN}"}
    )
    assert listed.headers["Cache-Control"] == "no-store"


@pytest.mark.gen_test
async def test_a_moderator_of_some_rooms_moderates_those_only(http_server, http_port, http_client, app):
    team = hs256(claims(name="Mo", mod=True, rooms=["team-*"]))
    kept = (await post_message(app.hub, "lobby", "ann", "kept")).message
    gone = (await post_message(app.hub, "team-a", "ann", "gone")).message
    assert (await call(http_client, http_port, "DELETE", f"/api/rooms/lobby/messages/{kept.id}", token=team))[0] == 401
    assert (await call(http_client, http_port, "DELETE", f"/api/rooms/team-a/messages/{gone.id}", token=team))[0] == 204
    assert (await call(http_client, http_port, "PATCH", "/api/rooms/lobby", {"locked": True}, team))[0] == 401
    assert (await call(http_client, http_port, "PATCH", "/api/rooms/team-b", {"locked": True}, team))[0] == 200
    # A ban of every room takes a moderator of every room; of one room, a moderator of that room.
    assert (await call(http_client, http_port, "POST", "/api/bans", {"handle": "x"}, team))[0] == 401
    assert (await call(http_client, http_port, "POST", "/api/bans", {"handle": "x", "room": "lobby"}, team))[0] == 401
    mine = await ban(http_client, http_port, team, handle="x", room="team-a")
    everywhere = await ban(http_client, http_port, handle="y")
    elsewhere = await ban(http_client, http_port, handle="z", room="lobby")
    # It sees and lifts the bans of its rooms; the others are, to it, not there.
    code, listed = await call(http_client, http_port, "GET", "/api/bans", token=team)
    assert code == 200 and [b["id"] for b in listed["bans"]] == [mine["id"]]
    for other in (everywhere, elsewhere):
        assert (await call(http_client, http_port, "DELETE", f"/api/bans/{other['id']}", token=team))[0] == 404
    assert (await call(http_client, http_port, "DELETE", f"/api/bans/{mine['id']}", token=team))[0] == 204
    code, listed = await call(http_client, http_port, "GET", "/api/bans")
    assert [b["id"] for b in listed["bans"]] == [everywhere["id"], elsewhere["id"]]
    # A token with mod: true for every room is a moderator of every room.
    every = hs256(claims(mod=True, rooms=["*"]))
    assert (await call(http_client, http_port, "POST", "/api/bans", {"handle": "w"}, every))[0] == 201


@pytest.mark.gen_test
async def test_a_private_room_answers_a_stranger_401_like_any_room(http_server, http_port, http_client, app):
    stored = (await post_message(app.hub, "hq", "ann", "secret")).message
    team = hs256(claims(mod=True, rooms=["team-*"]))
    for token in (None, team):
        assert (await call(http_client, http_port, "DELETE", f"/api/rooms/hq/messages/{stored.id}", token=token))[
            0
        ] == 401
        assert (await call(http_client, http_port, "DELETE", "/api/rooms/hq/messages/1", token=token))[0] == 401
    assert (await call(http_client, http_port, "DELETE", f"/api/rooms/hq/messages/{stored.id}"))[0] == 204
    assert await texts(app, "hq") == []


# -- deleting -------------------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_a_deleted_message_is_gone_from_history_the_page_and_the_sockets(
    http_server, http_port, http_client, app
):
    watcher = await connect(http_port, "lobby", features="deletes")
    plain = await connect(http_port, "lobby")
    await send_json(plain, {"handle": "ann", "message": "keep me"})
    await send_json(plain, {"handle": "troll", "message": "delete me"})
    kept, doomed = await receive_json(watcher), await receive_json(watcher)
    await receive_json(plain), await receive_json(plain)
    response = await http_client.fetch(
        f"http://127.0.0.1:{http_port}/api/rooms/lobby/messages/{doomed['id']}",
        method="DELETE",
        headers={"Authorization": f"Bearer {MODERATOR_TOKEN}"},
    )
    assert response.code == 204 and response.body == b""
    assert_delete_frame(await receive_json(watcher), doomed["id"])
    await assert_next_is_marker(plain)  # the socket that did not ask for deletes gets no frame
    code, page = await call(http_client, http_port, "GET", "/api/rooms/lobby/messages", token=None)
    assert code == 200 and [m["id"] for m in page["messages"]][:1] == [kept["id"]]
    assert doomed["id"] not in [m["id"] for m in page["messages"]]
    html = (await http_client.fetch(f"http://127.0.0.1:{http_port}/lobby/")).body.decode()
    assert "keep me" in html and "delete me" not in html
    # Deleted already, never there, not an id at all, not a room: 404, the 404 of anything not there.
    for path in (
        f"/api/rooms/lobby/messages/{doomed['id']}",
        f"/api/rooms/elsewhere/messages/{kept['id']}",
        "/api/rooms/lobby/messages/99999999999999999",
        "/api/rooms/lobby/messages/not-an-id",
        "/api/rooms/no.such.room/messages/1",
    ):
        assert await call(http_client, http_port, "DELETE", path) == (404, {"error": "Not found"}), path
    for ws in (watcher, plain):
        ws.close()


# -- locks ----------------------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_in_a_locked_room_only_moderators_post(http_server, http_port, http_client, app):
    assert await call(http_client, http_port, "PATCH", "/api/rooms/lobby", {"locked": True}) == (
        200,
        {"room": "lobby", "locked": True},
    )
    assert await call(http_client, http_port, "GET", "/api/rooms/lobby", token=None) == (
        200,
        {"room": "lobby", "locked": True},
    )
    guest = await connect(http_port, "lobby")
    error = await assert_forbidden(guest)
    assert "locked" in error["error"]
    assert (await say(http_client, http_port, "lobby", "ann", "let me in"))[0] == 403
    moderator = await socket_from(http_port, "lobby", token=MODERATOR_TOKEN)
    await send_json(moderator, {"handle": "mod", "message": "quiet please"})
    heard = await receive_json(guest)  # read by everyone, and marked as a moderator's
    assert (heard["message"], heard["moderator"]) == ("quiet please", True)
    room_moderator = hs256(claims(name="Mo", mod=True, rooms=["lobby"]))
    assert (await say(http_client, http_port, "lobby", "x", "me too", token=room_moderator))[0] == 201
    assert (await receive_json(guest))["handle"] == "Mo"
    assert (await say(http_client, http_port, "elsewhere", "ann", "other rooms are open"))[0] == 201
    # Again is no change; unlocked, everyone posts.
    assert (await call(http_client, http_port, "PATCH", "/api/rooms/lobby", {"locked": True}))[0] == 200
    assert await call(http_client, http_port, "PATCH", "/api/rooms/lobby", {"locked": False}) == (
        200,
        {"room": "lobby", "locked": False},
    )
    await assert_next_is_marker(guest, lambda text: say(http_client, http_port, "lobby", "ann", text))
    assert "let me in" not in await texts(app, "lobby")
    for ws in (guest, moderator):
        ws.close()


@pytest.mark.gen_test
@pytest.mark.parametrize("body", [{}, {"locked": "yes"}, {"locked": 1}, {"locked": None}, {"locked": True, "x": 1}, []])
async def test_a_bad_lock_is_400(http_server, http_port, http_client, body):
    code, answer = await call(http_client, http_port, "PATCH", "/api/rooms/lobby", body)
    assert code == 400 and answer["error"]
    assert (await call(http_client, http_port, "GET", "/api/rooms/lobby"))[1]["locked"] is False


@pytest.mark.gen_test
async def test_a_room_route_for_what_is_not_a_room_is_404(http_server, http_port, http_client):
    for path in ("/api/rooms/no.such.room", "/api/rooms/api", "/api/rooms/hq"):
        assert (await call(http_client, http_port, "GET", path, token=None))[0] == 404, path
    assert (await call(http_client, http_port, "PATCH", "/api/rooms/no.such.room", {"locked": True}))[0] == 404


@pytest.mark.gen_test
async def test_options_name_each_routes_methods(http_server, http_port, http_client):
    for path, allowed in (
        ("/api/rooms/lobby/messages/1", "PATCH, DELETE, OPTIONS"),
        ("/api/rooms/lobby", "GET, PATCH, OPTIONS"),
        ("/api/bans", "GET, POST, OPTIONS"),
        ("/api/bans/1", "DELETE, OPTIONS"),
    ):
        response = await http_client.fetch(f"http://127.0.0.1:{http_port}{path}", method="OPTIONS")
        assert (response.code, response.headers["Allow"]) == (204, allowed), path
    missing = await http_client.fetch(
        f"http://127.0.0.1:{http_port}/api/rooms/no.such.room", method="OPTIONS", raise_error=False
    )
    assert missing.code == 404

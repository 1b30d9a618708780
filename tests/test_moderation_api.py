"""The moderation API over real HTTP and sockets (PROTOCOL.md, "Moderation"): who may use it, deleting
messages, bans by handle and by address (in one room or all, for a time or until lifted), and locked
rooms. On the memory backend; the backends keep the contract suite's moderation tests, and
``test_moderation_processes.py`` runs this across processes and restarts."""

from __future__ import annotations

import asyncio
import json

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from rooms.handlers.moderation import MAX_BAN_SECONDS, MAX_REASON_CHARS
from tests.clients import assert_next_is_marker, connect, receive_json, send_json, wait_closed
from tests.conftest import app_config
from tests.messages import post as post_message
from tests.tokens import MODERATOR_TOKEN, SECRET, claims, hs256

JSON_TYPE = {"Content-Type": "application/json"}
BANNED = "203.0.113.9"
OTHER = "203.0.113.10"


@pytest.fixture
def config():
    return app_config(
        auth={"jwt_secret": SECRET},
        rooms={"private": ["hq"]},
        moderation={"tokens": [MODERATOR_TOKEN]},
        # Senders here go faster than a person, all from loopback; the rate limit is tested elsewhere.
        limits={"messages_per_second": 1000, "burst": 1000},
    )


async def call(http_client, port, method, path, payload=None, token=MODERATOR_TOKEN, headers=None, body=None):
    """``(status, decoded JSON body or None)`` of one request."""
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    if payload is not None or body is not None:
        sent.setdefault("Content-Type", "application/json")
        body = json.dumps(payload) if body is None else body
    response = await http_client.fetch(
        f"http://127.0.0.1:{port}{path}",
        method=method,
        headers=sent,
        body=body,
        raise_error=False,
        allow_nonstandard_methods=True,
    )
    decoded = json.loads(response.body) if response.body else None
    return response.code, decoded


async def say(http_client, port, room, handle, text, address=None, token=None):
    headers = {} if address is None else {"X-Forwarded-For": address}
    return await call(
        http_client, port, "POST", f"/api/rooms/{room}/messages", {"handle": handle, "message": text}, token, headers
    )


async def socket_from(port: int, room: str, address: str | None = None, token: str | None = None, features=None):
    query = "&".join(
        f"{name}={value}" for name, value in (("token", token), ("features", features)) if value is not None
    )
    url = f"ws://127.0.0.1:{port}/chat/{room}/" + (f"?{query}" if query else "")
    headers = {} if address is None else {"X-Forwarded-For": address}
    return await websocket_connect(HTTPRequest(url, headers=headers))


async def handshake(port: int, room: str, address: str | None = None, token: str | None = None) -> int:
    try:
        ws = await socket_from(port, room, address, token)
    except HTTPClientError as exc:
        return exc.code
    ws.close()
    return 101


async def texts(app, room: str) -> list[str]:
    return [m.message for m in (await app.hub.history(room, 200, None, None)).messages]


async def ban(http_client, port, token=MODERATOR_TOKEN, **fields) -> dict:
    code, answer = await call(http_client, port, "POST", "/api/bans", fields, token)
    assert code == 201, answer
    return answer


async def assert_forbidden(ws) -> dict:
    await send_json(ws, {"handle": "spammer", "message": "buy now"})
    error = await receive_json(ws)
    assert (error["type"], error["code"]) == ("error", "forbidden"), error
    return error


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
    assert await receive_json(watcher) == {"type": "delete", "id": doomed["id"]}
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


# -- bans by handle -------------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_a_banned_handle_is_forbidden_in_its_room_on_socket_and_post_and_nothing_is_stored(
    http_server, http_port, http_client, app
):
    made = await ban(http_client, http_port, handle="Spammer", room="lobby", reason="selling things")
    assert set(made) == {"id", "handle", "address", "room", "reason", "created", "expires"}
    assert (made["handle"], made["address"], made["room"], made["reason"], made["expires"]) == (
        "Spammer",
        None,
        "lobby",
        "selling things",
        None,
    )
    ws = await connect(http_port, "lobby")
    error = await assert_forbidden(ws)  # "spammer": handles are compared without case
    assert "banned" in error["error"] and "selling things" in error["error"]
    await assert_next_is_marker(ws)  # the socket stays open and takes other handles' messages
    assert await say(http_client, http_port, "lobby", "SPAMMER", "again") == (403, {"error": error["error"]})
    assert (await say(http_client, http_port, "elsewhere", "spammer", "in another room"))[0] == 201
    assert "buy now" not in await texts(app, "lobby") and "again" not in await texts(app, "lobby")
    ws.close()


@pytest.mark.gen_test
async def test_a_ban_of_every_room_holds_in_every_room_and_a_tokens_name_is_its_handle(
    http_server, http_port, http_client
):
    await ban(http_client, http_port, handle="Ann")
    for room in ("lobby", "elsewhere"):
        assert (await say(http_client, http_port, room, "ann", "hi"))[0] == 403
    # A token's name is the handle its messages go under, whatever the body says.
    named = hs256(claims(name="Ann"))
    assert (await say(http_client, http_port, "lobby", "bob", "as bob?", token=named))[0] == 403
    assert (await say(http_client, http_port, "lobby", "bob", "as bob"))[0] == 201


@pytest.mark.gen_test(timeout=15)
async def test_a_ban_for_seconds_stops_on_time_without_a_word_and_leaves_the_list(http_server, http_port, http_client):
    made = await ban(http_client, http_port, handle="brief", room="lobby", seconds=1)
    assert made["expires"] > made["created"]
    assert (await say(http_client, http_port, "lobby", "brief", "now"))[0] == 403
    await asyncio.sleep(1.2)
    assert (await say(http_client, http_port, "lobby", "brief", "later"))[0] == 201
    assert (await call(http_client, http_port, "GET", "/api/bans"))[1] == {"bans": []}


@pytest.mark.gen_test
async def test_bans_are_listed_and_lifted(http_server, http_port, http_client):
    first = await ban(http_client, http_port, handle="one", room="lobby")
    second = await ban(http_client, http_port, address="198.51.100.7", seconds=3600, reason="flood")
    code, listed = await call(http_client, http_port, "GET", "/api/bans")
    assert code == 200 and listed["bans"] == [first, second]
    assert (await say(http_client, http_port, "lobby", "one", "muted"))[0] == 403
    assert await call(http_client, http_port, "DELETE", f"/api/bans/{first['id']}") == (204, None)
    assert (await say(http_client, http_port, "lobby", "one", "back"))[0] == 201
    assert (await call(http_client, http_port, "GET", "/api/bans"))[1]["bans"] == [second]
    for ban_id in (first["id"], "12345", "not-an-id"):
        assert (await call(http_client, http_port, "DELETE", f"/api/bans/{ban_id}"))[0] == 404


BAD_BANS = {
    "empty": {},
    "both": {"handle": "a", "address": "192.0.2.1"},
    "empty handle": {"handle": ""},
    "handle not text": {"handle": 5},
    "handle with a control": {"handle": "a\u0007b"},
    "handle too long": {"handle": "a" * 33},
    "not an address": {"address": "example.org"},
    "a range": {"address": "10.0.0.0/8"},
    "address not text": {"address": 3232235777},
    "room not a label": {"handle": "a", "room": "no room"},
    "room a route": {"handle": "a", "room": "api"},
    "seconds zero": {"handle": "a", "seconds": 0},
    "seconds negative": {"handle": "a", "seconds": -5},
    "seconds a fraction": {"handle": "a", "seconds": 1.5},
    "seconds text": {"handle": "a", "seconds": "60"},
    "seconds true": {"handle": "a", "seconds": True},
    "seconds too many": {"handle": "a", "seconds": MAX_BAN_SECONDS + 1},
    "reason too long": {"handle": "a", "reason": "x" * (MAX_REASON_CHARS + 1)},
    "reason not text": {"handle": "a", "reason": 5},
    "reason of two lines": {"handle": "a", "reason": "one\ntwo"},
    "unknown field": {"handle": "a", "minutes": 5},
}


@pytest.mark.gen_test
@pytest.mark.parametrize("case", sorted(BAD_BANS))
async def test_a_bad_ban_is_400_naming_what_is_wrong(http_server, http_port, http_client, case):
    code, answer = await call(http_client, http_port, "POST", "/api/bans", BAD_BANS[case])
    assert code == 400 and answer["error"], answer
    assert (await call(http_client, http_port, "GET", "/api/bans"))[1] == {"bans": []}


@pytest.mark.gen_test
async def test_a_ban_body_must_be_a_json_object_of_bounded_size(http_server, http_port, http_client):
    for body in ("[]", "not json", '"handle"'):
        assert (await call(http_client, http_port, "POST", "/api/bans", body=body))[0] == 400
    plain = {"Content-Type": "text/plain"}
    assert (await call(http_client, http_port, "POST", "/api/bans", body='{"handle": "a"}', headers=plain))[0] == 415
    huge = json.dumps({"handle": "a", "reason": "x" * 70000})
    assert (await call(http_client, http_port, "POST", "/api/bans", body=huge))[0] == 413
    foreign = {"Origin": "https://elsewhere.example"}
    assert (await call(http_client, http_port, "POST", "/api/bans", {"handle": "a"}, headers=foreign))[0] == 403


# -- bans by address --------------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_a_banned_address_loses_its_sockets_in_the_room_and_is_refused_there(
    http_server, http_port, http_client, app
):
    in_lobby = await socket_from(http_port, "lobby", BANNED)
    elsewhere = await socket_from(http_port, "elsewhere", BANNED)
    neighbour = await socket_from(http_port, "lobby", OTHER)
    made = await ban(http_client, http_port, address=BANNED, room="lobby")
    assert made["address"] == BANNED and made["handle"] is None
    assert await wait_closed(in_lobby) == 1008
    assert await handshake(http_port, "lobby", BANNED) == 403
    assert (await say(http_client, http_port, "lobby", "ann", "from a banned address", BANNED))[0] == 403
    # Another room, another address: not banned.
    await assert_next_is_marker(elsewhere)
    await assert_next_is_marker(neighbour)
    assert await handshake(http_port, "elsewhere", BANNED) == 101
    assert (await say(http_client, http_port, "elsewhere", "ann", "fine here", BANNED))[0] == 201
    # A page still loads: PROTOCOL names sockets and posts.
    assert (
        await http_client.fetch(f"http://127.0.0.1:{http_port}/lobby/", headers={"X-Forwarded-For": BANNED})
    ).code == 200
    assert (await call(http_client, http_port, "DELETE", f"/api/bans/{made['id']}"))[0] == 204
    assert await handshake(http_port, "lobby", BANNED) == 101
    for ws in (elsewhere, neighbour):
        ws.close()


@pytest.mark.gen_test
async def test_a_ban_of_every_room_closes_every_socket_of_the_address(http_server, http_port, http_client):
    sockets = [await socket_from(http_port, room, BANNED) for room in ("lobby", "elsewhere", "lobby")]
    await ban(http_client, http_port, address=BANNED)
    assert [await wait_closed(ws) for ws in sockets] == [1008, 1008, 1008]
    assert await handshake(http_port, "third", BANNED) == 403


@pytest.mark.gen_test
async def test_an_ipv6_ban_holds_its_whole_64(http_server, http_port, http_client):
    made = await ban(http_client, http_port, address="2001:db8:1:2::5")
    assert made["address"] == "2001:db8:1:2::/64"
    assert await handshake(http_port, "lobby", "2001:db8:1:2:aaaa:bbbb:cccc:dddd") == 403
    assert await handshake(http_port, "lobby", "2001:db8:1:3::5") == 101
    # The /64 itself, as the list shows it, is taken too; a mapped IPv4 address is that IPv4 address.
    assert (await ban(http_client, http_port, address="2001:db8:9:9::/64"))["address"] == "2001:db8:9:9::/64"
    assert (await ban(http_client, http_port, address="::ffff:192.0.2.4"))["address"] == "192.0.2.4"
    assert await handshake(http_port, "lobby", "192.0.2.4") == 403


@pytest.mark.gen_test
async def test_moderators_are_never_refused_by_bans(http_server, http_port, http_client, app):
    await ban(http_client, http_port, address=BANNED)
    await ban(http_client, http_port, handle="mod")
    ws = await socket_from(http_port, "lobby", BANNED, token=MODERATOR_TOKEN)
    await send_json(ws, {"handle": "mod", "message": "still here"})
    assert (await receive_json(ws))["message"] == "still here"
    code, _ = await say(http_client, http_port, "lobby", "mod", "by post", BANNED, MODERATOR_TOKEN)
    assert code == 201 and (await receive_json(ws))["message"] == "by post"
    # A new ban of the moderator's address does not close its socket.
    await ban(http_client, http_port, address=BANNED, room="lobby")
    await assert_next_is_marker(ws)
    ws.close()


@pytest.mark.gen_test
async def test_a_banned_sockets_typing_is_dropped(http_server, http_port, http_client):
    watcher = await connect(http_port, "lobby", features="typing")
    typist = await connect(http_port, "lobby")
    await ban(http_client, http_port, handle="spammer", room="lobby")
    await send_json(typist, {"type": "typing", "handle": "spammer"})
    await send_json(typist, {"type": "typing", "handle": "ann"})
    assert await receive_json(watcher) == {"type": "typing", "handle": "ann"}
    for ws in (watcher, typist):
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
    assert (await receive_json(guest))["message"] == "quiet please"  # read by everyone
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
        ("/api/rooms/lobby/messages/1", "DELETE, OPTIONS"),
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

"""Bans over real HTTP and sockets (docs/protocol.md, "Moderation"): by handle and by address, in one room or
every room, for a time or until lifted; listed and lifted; bad bodies refused; a banned address's sockets
closed and its handshakes refused; moderators never refused."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from rooms.web.handlers.moderation import MAX_BAN_SECONDS, MAX_REASON_CHARS
from tests.support.clients import assert_next_is_marker, connect, receive_json, send_json, wait_closed
from tests.support.moderation import (
    BANNED,
    OTHER,
    assert_forbidden,
    ban,
    call,
    handshake,
    moderated_config,
    say,
    socket_from,
    texts,
)
from tests.support.tokens import MODERATOR_TOKEN, claims, hs256
from tests.support.waiting import eventually


@pytest.fixture
def config():
    return moderated_config()


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


LOOKALIKES = [
    "spammer ",  # white space around it
    "s p a m m e r",
    "\uff53\uff50\uff41\uff4d\uff4d\uff45\uff52",  # fullwidth
    "\U0001d42c\U0001d429\U0001d41a\U0001d426\U0001d426\U0001d41e\U0001d42b",  # mathematical bold
    "\u0455\u0440\u0430\u043c\u043c\u0435\u0433",  # Cyrillic, every letter
    "\u0405\u0420\u0410\u041c\u041c\u0415\u0413",  # the same in capitals
    "\u13da\u13e2\u13aa\u13b7\u13b7\u13ac\u13a1",  # Cherokee
    "sparnrner",  # "rn" for "m"
]


@pytest.mark.gen_test
async def test_a_handle_ban_holds_against_every_handle_that_looks_the_same(http_server, http_port, http_client, app):
    await ban(http_client, http_port, handle="spammer", room="lobby")
    for handle in LOOKALIKES:
        code, answer = await say(http_client, http_port, "lobby", handle, f"as {handle}")
        assert (code, "banned" in answer["error"]) == (403, True), handle
    # On a socket, and under a token's name, too.
    ws = await connect(http_port, "lobby")
    await send_json(ws, {"handle": LOOKALIKES[4], "message": "buy now"})
    assert (await receive_json(ws))["code"] == "forbidden"
    await assert_next_is_marker(ws)
    named = hs256(claims(name=LOOKALIKES[2]))
    assert (await say(http_client, http_port, "lobby", "bob", "as bob?", token=named))[0] == 403
    # Characters that draw nothing are no handle at all, banned or not.
    for handle in ("spam\u034fmer", "spammer\ufe0f", "spammer\u3164"):
        code, answer = await say(http_client, http_port, "lobby", handle, "hidden")
        assert code == 400 and "U+" in answer["error"], handle
    # Handles that differ by a letter are not banned; nothing of the banned ones was stored.
    others = ["spamme", "scammer", "spammers", "\u0455\u0440\u0430\u043c\u0435\u0433"]
    for handle in others:
        assert (await say(http_client, http_port, "lobby", handle, f"as {handle}"))[0] == 201, handle
    assert [text for text in await texts(app, "lobby") if not text.startswith("marker")] == [f"as {h}" for h in others]
    ws.close()


@pytest.mark.gen_test
async def test_a_ban_of_a_lookalike_holds_against_the_handle_it_looks_like(http_server, http_port, http_client):
    made = await ban(http_client, http_port, handle=LOOKALIKES[3] + " ")
    assert made["handle"] == LOOKALIKES[3]  # stored as a handle is: without the white space around it
    assert (await say(http_client, http_port, "lobby", "Spammer", "hi"))[0] == 403
    assert (await say(http_client, http_port, "lobby", LOOKALIKES[4], "hi"))[0] == 403


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
    "an IPv4 range wider than /8": {"address": "10.0.0.0/7"},
    "an IPv6 range wider than /32": {"address": "2001:db8::/31"},
    "a prefix past the address": {"address": "10.0.0.0/33"},
    "an IPv6 prefix past the address": {"address": "2001:db8::/129"},
    "a prefix not a number": {"address": "10.0.0.0/eight"},
    "a range of a name": {"address": "example.org/24"},
    "an empty address": {"address": ""},
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
async def test_a_range_too_wide_or_not_a_range_is_refused_saying_which_ranges_are_taken(
    http_server, http_port, http_client
):
    for address, says in (
        ("10.0.0.0/7", "/8 to /32"),
        ("2001:db8::/31", "/32 to /128"),
        ("2001:db8::/129", "CIDR"),
        ("junk", "CIDR"),
    ):
        code, answer = await call(http_client, http_port, "POST", "/api/bans", {"address": address})
        assert code == 400 and "address" in answer["error"] and says in answer["error"], answer


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


@pytest.mark.gen_test
async def test_a_ban_stored_elsewhere_holds_here_once_its_notice_comes(
    http_server, http_port, http_client, app, app_backend
):
    # As another process would: straight into the store, which tells every process (this one too).
    ws = await socket_from(http_port, "lobby", BANNED)
    await app_backend.add_ban(None, BANNED, None, None, "")
    assert await wait_closed(ws) == 1008
    await app_backend.add_ban("spammer", None, "lobby", None, "")
    await app_backend.set_locked("quiet", True)
    await eventually(lambda: app.hub.is_locked("quiet"))  # the read after a notice takes in bans and locks at once
    assert (await say(http_client, http_port, "lobby", "spammer", "hi"))[0] == 403
    assert (await say(http_client, http_port, "quiet", "ann", "hi"))[0] == 403
    assert (await say(http_client, http_port, "elsewhere", "ann", "hi", BANNED))[0] == 403


@pytest.mark.gen_test(timeout=15)
async def test_an_address_ban_for_seconds_lets_the_address_back_on_time(http_server, http_port, http_client):
    await ban(http_client, http_port, address=BANNED, seconds=1)
    assert await handshake(http_port, "lobby", BANNED) == 403
    await asyncio.sleep(1.2)
    assert await handshake(http_port, "lobby", BANNED) == 101
    assert (await say(http_client, http_port, "lobby", "ann", "back", BANNED))[0] == 201


# -- bans of ranges ---------------------------------------------------------------------------------------


@pytest.mark.gen_test
@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("10.1.2.3/8", "10.0.0.0/8"),
        ("198.51.100.9/32", "198.51.100.9"),
        ("2001:db8:aa:ff00::/56", "2001:db8:aa:ff00::/56"),
        ("2001:db8::/32", "2001:db8::/32"),
        ("2001:db8:1:2:3::/80", "2001:db8:1:2::/64"),  # narrower than a /64: its /64
        ("2001:db8:1:2::5/128", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.0/120", "192.0.2.0/24"),
    ],
)
async def test_a_range_is_kept_as_the_network_it_names(http_server, http_port, http_client, given, kept):
    assert (await ban(http_client, http_port, address=given))["address"] == kept


class TestRangesOnEveryBackend:
    """Bans are stored by the backend, read by every process: a range holds on each backend, made through
    the API or stored by another process."""

    @pytest.fixture
    def app(self, app_on_each_backend):
        return app_on_each_backend

    @pytest.mark.gen_test(timeout=30)
    async def test_a_range_ban_holds_against_every_client_inside_it(
        self, backend_name, http_server, http_port, http_client, app_backend
    ):
        inside_v4 = await socket_from(http_port, "lobby", "198.51.100.77")
        inside_v6 = await socket_from(http_port, "lobby", "2001:db8:aa:ff01::9")
        outside = await socket_from(http_port, "lobby", "2001:db8:ab::1")
        made = await ban(http_client, http_port, address="198.51.100.0/24", room="lobby")
        assert made["address"] == "198.51.100.0/24"
        assert await wait_closed(inside_v4) == 1008
        assert await handshake(http_port, "lobby", "198.51.100.200") == 403
        assert (await say(http_client, http_port, "lobby", "ann", "hi", "198.51.100.5"))[0] == 403
        assert await handshake(http_port, "lobby", "198.51.101.1") == 101
        # Another process's ban of a /48 comes through the store's notice, and holds in every room.
        await app_backend.add_ban(None, "2001:db8:aa::/48", None, None, "")
        assert await wait_closed(inside_v6) == 1008
        assert await handshake(http_port, "elsewhere", "2001:db8:aa:1:2:3:4:5") == 403
        assert (await say(http_client, http_port, "elsewhere", "ann", "hi", "2001:db8:aa:ffff::1"))[0] == 403
        await assert_next_is_marker(outside)
        assert (await say(http_client, http_port, "lobby", "ann", "next door", "2001:db8:ab::2"))[0] == 201
        listed = (await call(http_client, http_port, "GET", "/api/bans"))[1]["bans"]
        assert [entry["address"] for entry in listed] == ["198.51.100.0/24", "2001:db8:aa::/48"]
        outside.close()


class TestRealIpHeader:
    """Behind a proxy that sets only X-Real-IP, a client's own X-Forwarded-For does not step around a ban."""

    @pytest.fixture
    def config(self):
        config = moderated_config()
        return dataclasses.replace(config, server=dataclasses.replace(config.server, client_address_header="x-real-ip"))

    @pytest.mark.gen_test
    async def test_a_banned_client_cannot_name_another_address_in_x_forwarded_for(
        self, http_server, http_port, http_client
    ):
        await ban(http_client, http_port, address=BANNED)
        headers = {"X-Real-IP": BANNED, "X-Forwarded-For": OTHER}
        code, _ = await call(
            http_client, http_port, "POST", "/api/rooms/lobby/messages", {"handle": "a", "message": "hi"}, None, headers
        )
        assert code == 403
        with pytest.raises(HTTPClientError) as refused:
            await websocket_connect(HTTPRequest(f"ws://127.0.0.1:{http_port}/chat/lobby/", headers=headers))
        assert refused.value.code == 403

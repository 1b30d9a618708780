"""Private rooms and invites over real HTTP and sockets: a private room is the 404 of a route that is not
there to whoever may not enter it, is never listed, and lets in a token that covers it or an invite."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from rooms.access.invites import InviteSigner
from rooms.access.policy import AccessPolicy
from tests.support.apps import app_config
from tests.support.clients import receive_json, send_json
from tests.support.messages import post as post_message
from tests.support.tokens import MODERATOR_TOKEN, SECRET, claims, hs256

JSON_TYPE = {"Content-Type": "application/json"}
PRIVATE = {"private": ["team-*", "hq"]}


@pytest.fixture
def config():
    return app_config(
        auth={"jwt_secret": SECRET},
        rooms={**PRIVATE, "invite_secret": "x" * 40},
        moderation={"tokens": [MODERATOR_TOKEN]},
    )


async def fetch(http_client, port: int, path: str, token: str | None = None, **kwargs):
    headers = dict(kwargs.pop("headers", {}))
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return await http_client.fetch(
        f"http://127.0.0.1:{port}{path}", headers=headers, raise_error=False, follow_redirects=False, **kwargs
    )


async def post(http_client, port: int, path: str, payload: dict | None, token: str | None = None):
    body = "" if payload is None else json.dumps(payload)
    return await fetch(http_client, port, path, token, method="POST", body=body, headers=JSON_TYPE)


async def connect(port: int, room: str, **query: str):
    suffix = "?" + "&".join(f"{name}={value}" for name, value in query.items()) if query else ""
    return await websocket_connect(HTTPRequest(f"ws://127.0.0.1:{port}/chat/{room}/{suffix}"))


async def handshake_code(port: int, room: str, **query: str) -> int:
    with pytest.raises(HTTPClientError) as caught:
        await connect(port, room, **query)
    return caught.value.code


async def make_invite(http_client, port: int, room: str, seconds: int | None = None) -> dict:
    payload = None if seconds is None else {"seconds": seconds}
    response = await post(http_client, port, f"/api/rooms/{room}/invites", payload, MODERATOR_TOKEN)
    assert response.code == 201, response.body
    return json.loads(response.body)


def code_of(invite: dict) -> str:
    return parse_qs(urlsplit(invite["url"]).query)["invite"][0]


async def answers(http_client, port: int, room: str, token: str | None = None, invite: str | None = None) -> tuple:
    """What the page, the API (GET and POST) and the handshake answer for ``room``."""
    query = {} if invite is None else {"invite": invite}
    suffix = f"?invite={invite}" if invite is not None else ""
    page = await fetch(http_client, port, f"/{room}/" + (suffix if token is None else f"?token={token}"))
    history = await fetch(http_client, port, f"/api/rooms/{room}/messages{suffix}", token)
    posted = await post(
        http_client, port, f"/api/rooms/{room}/messages{suffix}", {"handle": "a", "message": "x"}, token
    )
    if token is not None:
        query["token"] = token
    try:
        (await connect(port, room, **query)).close()
        socket = 101
    except HTTPClientError as exc:
        socket = exc.code
    return page.code, history.code, posted.code, socket


# -- without access ----------------------------------------------------------------------------------


@pytest.mark.gen_test
@pytest.mark.parametrize("room", ["team-a", "team-", "hq"])
async def test_a_private_room_is_404_everywhere_without_access(http_server, http_port, http_client, room):
    assert await answers(http_client, http_port, room) == (404, 404, 404, 404)
    assert await answers(http_client, http_port, "hq-public") == (200, 200, 201, 101)


@pytest.mark.gen_test
async def test_its_404_is_the_very_404_of_what_is_not_there(http_server, http_port, http_client):
    for private, missing in (("/team-a/", "/no.such.room/"), ("/api/rooms/team-a/messages", "/api/rooms/x.y/messages")):
        hidden, absent = await fetch(http_client, http_port, private), await fetch(http_client, http_port, missing)
        assert (hidden.code, hidden.body) == (absent.code, absent.body) == (404, absent.body)
        assert hidden.headers["Content-Type"] == absent.headers["Content-Type"]
    posted = await post(http_client, http_port, "/api/rooms/team-a/messages", {"handle": "a", "message": "x"})
    assert json.loads(posted.body) == {"error": "Not found"}
    with pytest.raises(HTTPClientError) as missing_room:
        await connect(http_port, "x.y")
    with pytest.raises(HTTPClientError) as private_room:
        await connect(http_port, "team-a")
    assert missing_room.value.code == private_room.value.code == 404
    assert missing_room.value.response.body == private_room.value.response.body


@pytest.mark.gen_test
async def test_whatever_else_the_request_holds_it_is_404_first(http_server, http_port, http_client):
    assert (await fetch(http_client, http_port, "/api/rooms/team-a/messages?limit=0")).code == 404
    bad_type = await fetch(
        http_client,
        http_port,
        "/api/rooms/team-a/messages",
        method="POST",
        body="x",
        headers={"Content-Type": "text/plain"},
    )
    assert bad_type.code == 404
    assert await handshake_code(http_port, "team-a", since="yesterday") == 404


@pytest.mark.gen_test
async def test_a_private_room_is_never_listed_on_the_home_page(http_server, http_port, http_client, app):
    for room, count in (("team-busy", 5), ("hq", 4), ("lobby", 1)):
        for n in range(count):
            await post_message(app.hub, room, "ann", f"m{n}")
    body = (await fetch(http_client, http_port, "/")).body.decode()
    assert "/lobby/" in body
    assert "team-busy" not in body and "/hq/" not in body


@pytest.mark.gen_test
async def test_a_token_without_rooms_enters_only_public_ones(http_server, http_port, http_client):
    token = hs256(claims(name="Ann"))
    assert await answers(http_client, http_port, "team-a", token) == (404, 404, 404, 404)
    assert await answers(http_client, http_port, "lobby", token) == (200, 200, 201, 101)


# -- with a token that covers it ---------------------------------------------------------------------


@pytest.mark.gen_test
async def test_a_token_whose_rooms_cover_it_enters(http_server, http_port, http_client):
    token = hs256(claims(name="Ann", rooms=["team-*"]))
    assert await answers(http_client, http_port, "team-a", token) == (200, 200, 201, 101)
    assert await answers(http_client, http_port, "hq", token) == (404, 404, 404, 404)
    # A token's rooms are the rooms it may enter: elsewhere it is a stranger, public rooms included.
    assert await answers(http_client, http_port, "lobby", token) == (404, 404, 404, 404)
    page = await fetch(http_client, http_port, f"/team-a/?token={token}")
    assert page.headers["Cache-Control"] == "no-store"


@pytest.mark.gen_test
async def test_a_moderator_token_enters_every_room(http_server, http_port, http_client):
    history = await fetch(http_client, http_port, "/api/rooms/hq/messages", MODERATOR_TOKEN)
    assert history.code == 200
    ws = await connect(http_port, "hq", token=MODERATOR_TOKEN)
    await send_json(ws, {"handle": "mod", "message": "in hq"})
    assert (await receive_json(ws))["message"] == "in hq"


# -- invites -----------------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_an_invite_lets_its_holder_into_its_room_only(http_server, http_port, http_client):
    invite = await make_invite(http_client, http_port, "team-a")
    assert invite["url"].startswith("/team-a/?invite=")
    code = code_of(invite)
    assert len(code) == 32
    assert await answers(http_client, http_port, "team-a", invite=code) == (200, 200, 201, 101)
    assert await answers(http_client, http_port, "team-b", invite=code) == (404, 404, 404, 404)
    page = await fetch(http_client, http_port, invite["url"])
    assert page.code == 200 and code not in page.body.decode()


@pytest.mark.gen_test
async def test_a_socket_in_by_invite_chats_in_the_room(http_server, http_port, http_client):
    code = code_of(await make_invite(http_client, http_port, "hq"))
    guest, member = await connect(http_port, "hq", invite=code), await connect(http_port, "hq", token=MODERATOR_TOKEN)
    await send_json(guest, {"handle": "guest", "message": "thanks for the link"})
    for ws in (guest, member):
        assert (await receive_json(ws))["handle"] == "guest"


@pytest.mark.gen_test
@pytest.mark.parametrize("change", ["last", "first", "cut", "grow", "padding"])
async def test_a_tampered_invite_is_404(http_server, http_port, http_client, change):
    code = code_of(await make_invite(http_client, http_port, "team-a"))
    flip = {"A": "B"}.get
    tampered = {
        "last": code[:-1] + (flip(code[-1]) or "A"),
        "first": (flip(code[0]) or "A") + code[1:],
        "cut": code[:-2],
        "grow": code + "AA",
        "padding": code + "==",
    }[change]
    assert await answers(http_client, http_port, "team-a", invite=tampered) == (404, 404, 404, 404)


@pytest.mark.gen_test(timeout=10)
async def test_an_invite_expires(http_server, http_port, http_client):
    invite = await make_invite(http_client, http_port, "team-a", seconds=1)
    code = code_of(invite)
    assert (await fetch(http_client, http_port, invite["url"])).code == 200
    expires = datetime.fromisoformat(invite["expires"])
    assert expires.tzinfo is not None
    await asyncio.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.1)
    assert await answers(http_client, http_port, "team-a", invite=code) == (404, 404, 404, 404)


@pytest.mark.gen_test
async def test_an_invite_is_a_week_by_default(http_server, http_port, http_client):
    invite = await make_invite(http_client, http_port, "team-a")
    left = datetime.fromisoformat(invite["expires"]) - datetime.now(UTC)
    assert 7 * 86400 - 5 < left.total_seconds() <= 7 * 86400 + 1


@pytest.mark.gen_test
@pytest.mark.parametrize("seconds", [0, -1, 90 * 86400 + 1, "60", 1.5, True, None])
async def test_an_invite_of_bad_length_is_400(http_server, http_port, http_client, seconds):
    response = await post(http_client, http_port, "/api/rooms/team-a/invites", {"seconds": seconds}, MODERATOR_TOKEN)
    assert response.code == 400 and "seconds" in json.loads(response.body)["error"]


@pytest.mark.gen_test
async def test_only_a_moderator_makes_invites(http_server, http_port, http_client):
    path = "/api/rooms/team-a/invites"
    not_moderators = [
        None,
        "a-wrong-token-that-is-long-enough-0123456789",
        hs256(claims(rooms=["team-*"])),  # covers the room, but no moderator
        hs256(claims(mod=True, rooms=["hq"])),  # a moderator, of another room
        hs256(claims(mod=True)),  # a moderator of the public rooms only
        hs256(claims(mod=True, rooms=["team-*"], seconds=-60)),  # expired
    ]
    for token in not_moderators:
        response = await post(http_client, http_port, path, {"seconds": 60}, token)
        assert response.code == 401, token
        assert json.loads(response.body)["error"]
    covering = hs256(claims(mod=True, rooms=["team-*"]))
    assert (await post(http_client, http_port, path, {"seconds": 60}, covering)).code == 201
    # Without a body at all (curl -X POST): a week.
    bare = await fetch(http_client, http_port, path, MODERATOR_TOKEN, method="POST", body="")
    assert bare.code == 201


@pytest.mark.gen_test
async def test_a_moderator_in_by_invite_is_no_moderator_there(http_server, http_port, http_client, app):
    code = code_of(await make_invite(http_client, http_port, "hq"))
    moderator_elsewhere = hs256(claims(mod=True, rooms=["team-*"]))
    identity = app.access.admit("hq", moderator_elsewhere, code)
    assert identity.moderator is False
    assert app.access.admit("team-a", moderator_elsewhere).moderator is True


@pytest.mark.gen_test
async def test_the_messages_of_a_moderator_in_by_invite_say_who_sent_them_but_not_moderator(
    http_server, http_port, http_client
):
    code = code_of(await make_invite(http_client, http_port, "hq"))
    moderator_elsewhere = hs256(claims("mod-7", mod=True, rooms=["team-*"]))
    guest = await connect(http_port, "hq", token=moderator_elsewhere, invite=code)
    await send_json(guest, {"handle": "x", "message": "a guest here", "moderator": True})
    as_guest = await receive_json(guest)
    assert (as_guest["user"], "moderator" in as_guest) == ("mod-7", False)
    posted = await post(
        http_client,
        http_port,
        f"/api/rooms/hq/messages?invite={code}",
        {"handle": "x", "message": "hi"},
        moderator_elsewhere,
    )
    assert posted.code == 201 and "moderator" not in json.loads(posted.body)
    at_home = await post(
        http_client, http_port, "/api/rooms/team-a/messages", {"handle": "x", "message": "hi"}, moderator_elsewhere
    )
    assert (json.loads(at_home.body)["user"], json.loads(at_home.body)["moderator"]) == ("mod-7", True)


@pytest.mark.gen_test
async def test_an_invite_made_by_one_process_works_on_another_with_the_config(http_server, http_port, http_client):
    invite = await make_invite(http_client, http_port, "team-a")
    for config in (
        app_config(rooms={**PRIVATE, "invite_secret": "x" * 40}),
        app_config(rooms={**PRIVATE, "invite_secret": "x" * 40}, moderation={"tokens": ["another" * 6]}),
    ):
        assert AccessPolicy.from_config(config).may_enter(
            AccessPolicy.from_config(config).identify(None), "team-a", code_of(invite)
        )
    assert not AccessPolicy.from_config(app_config(rooms={**PRIVATE, "invite_secret": "y" * 40})).may_enter(
        AccessPolicy.from_config(app_config()).identify(None), "team-a", code_of(invite)
    )


def test_without_an_invite_secret_the_key_comes_from_the_moderator_tokens(caplog):
    shared = {"rooms": PRIVATE, "moderation": {"tokens": [MODERATOR_TOKEN, "second-moderator-token-0123456789abcdef"]}}
    one, two = AccessPolicy.from_config(app_config(**shared)), AccessPolicy.from_config(app_config(**shared))
    code = one.invite("team-a", 60).code
    assert two.may_enter(two.identify(None), "team-a", code)
    reordered = app_config(rooms=PRIVATE, moderation={"tokens": list(reversed(shared["moderation"]["tokens"]))})
    assert AccessPolicy.from_config(reordered).may_enter(two.identify(None), "team-a", code)
    other_tokens = app_config(rooms=PRIVATE, moderation={"tokens": [MODERATOR_TOKEN]})
    assert not AccessPolicy.from_config(other_tokens).may_enter(two.identify(None), "team-a", code)
    assert "invite" not in caplog.text


def test_without_any_key_invites_are_this_process_alone_and_the_log_says_so(caplog):
    with caplog.at_level(logging.WARNING, logger="rooms.access.invites"):
        one, two = (
            AccessPolicy.from_config(app_config(rooms=PRIVATE)),
            AccessPolicy.from_config(app_config(rooms=PRIVATE)),
        )
    assert "rooms.invite_secret is not set" in caplog.text
    code = one.invite("team-a", 60).code
    assert one.may_enter(one.identify(None), "team-a", code)
    assert not two.may_enter(two.identify(None), "team-a", code)


def test_an_invite_is_good_until_its_expiry_and_not_after():
    signer = InviteSigner(b"k" * 32)
    invite = signer.make("team-a", 60, now=1000.5)
    assert invite.expires.timestamp() == 1061  # rounded up: at least the time asked
    assert signer.admits(invite.code, "team-a", now=1060.9)
    assert not signer.admits(invite.code, "team-a", now=1061)
    assert not signer.admits(invite.code, "team-b", now=1000)


class TestTokenMode:
    @pytest.fixture
    def config(self):
        return app_config(
            auth={"mode": "token", "jwt_secret": SECRET}, rooms=PRIVATE, moderation={"tokens": [MODERATOR_TOKEN]}
        )

    @pytest.mark.gen_test
    async def test_an_invite_lets_a_signed_in_user_in_but_signs_no_one_in(self, http_server, http_port, http_client):
        code = code_of(await make_invite(http_client, http_port, "team-a"))
        assert await answers(http_client, http_port, "team-a", invite=code) == (401, 401, 401, 401)
        token = hs256(claims(name="Ann"))
        history = await fetch(http_client, http_port, f"/api/rooms/team-a/messages?invite={code}", token)
        assert history.code == 200
        assert (await fetch(http_client, http_port, "/api/rooms/team-a/messages", token)).code == 404

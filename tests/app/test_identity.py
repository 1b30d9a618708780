"""Signed identities over real HTTP and sockets: tokens of each algorithm honoured, bad ones refused
(401), a token's name replacing the handle a client gives, and token mode refusing requests without one."""

from __future__ import annotations

import hashlib
import hmac
import json
import re

import jwt
import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from tests.support.apps import app_config
from tests.support.clients import receive_json, send_json
from tests.support.messages import post as post_message
from tests.support.tokens import ALGORITHMS, MODERATOR_TOKEN, SECRET, Signer, claims, hs256, private_key, unsigned

JSON_TYPE = {"Content-Type": "application/json"}


async def fetch(http_client, port: int, path: str, token: str | None = None, **kwargs):
    headers = dict(kwargs.pop("headers", {}))
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return await http_client.fetch(
        f"http://127.0.0.1:{port}{path}", headers=headers, raise_error=False, follow_redirects=False, **kwargs
    )


async def post(http_client, port: int, room: str, payload: dict, token: str | None = None):
    return await fetch(
        http_client,
        port,
        f"/api/rooms/{room}/messages",
        token,
        method="POST",
        body=json.dumps(payload),
        headers=JSON_TYPE,
    )


async def connect(port: int, room: str, token: str | None = None, **query: str):
    if token is not None:
        query["token"] = token
    suffix = "?" + "&".join(f"{name}={value}" for name, value in query.items()) if query else ""
    return await websocket_connect(HTTPRequest(f"ws://127.0.0.1:{port}/chat/{room}/{suffix}"))


async def refused_handshake(port: int, room: str, token: str | None = None, **query: str) -> int:
    with pytest.raises(HTTPClientError) as caught:
        await connect(port, room, token, **query)
    return caught.value.code


def error_of(response) -> str:
    assert response.headers["Content-Type"].startswith("application/json")
    return json.loads(response.body)["error"]


# -- each algorithm ----------------------------------------------------------------------------------


@pytest.fixture(params=ALGORITHMS)
def signer(request, tmp_path) -> Signer:
    return Signer(request.param, tmp_path)


@pytest.fixture
def config(signer):
    return app_config(auth=signer.auth)


@pytest.mark.gen_test
async def test_a_token_of_each_algorithm_names_the_sender_of_a_post(http_server, http_port, http_client, signer):
    token = signer.sign(claims("user-7", name="Ann Signed"))
    response = await post(http_client, http_port, "lobby", {"handle": "someone else", "message": "hi"}, token)
    assert response.code == 201, response.body
    assert json.loads(response.body)["handle"] == "Ann Signed"


@pytest.mark.gen_test
async def test_a_token_of_each_algorithm_names_the_sender_on_the_socket(http_server, http_port, signer):
    reader = await connect(http_port, "lobby")
    writer = await connect(http_port, "lobby", signer.sign(claims("user-7", name="Bob Signed")))
    await send_json(writer, {"handle": "mallory", "message": "who am I"})
    for ws in (writer, reader):
        message = await receive_json(ws)
        assert (message["handle"], message["message"]) == ("Bob Signed", "who am I")


@pytest.mark.gen_test
async def test_a_token_signed_with_another_key_of_the_same_kind_is_refused(http_server, http_port, http_client, signer):
    other = SECRET[::-1] if signer.algorithm == "HS256" else private_key(signer.algorithm)
    token = jwt.encode(claims(), other, algorithm=signer.algorithm)
    response = await fetch(http_client, http_port, "/api/rooms/lobby/messages", token)
    assert response.code == 401 and "not valid" in error_of(response)
    assert await refused_handshake(http_port, "lobby", token) == 401


# -- what a token must be ----------------------------------------------------------------------------


class TestRefusedTokens:
    @pytest.fixture
    def config(self):
        return app_config(auth={"jwt_secret": SECRET, "jwt_audience": "chat.example.org"})

    @pytest.mark.gen_test
    @pytest.mark.parametrize(
        ("token", "says"),
        [
            (hs256(claims(seconds=-60, aud="chat.example.org")), "expired"),
            (hs256(claims(aud="elsewhere.example.org")), "Audience"),
            (hs256(claims()), "aud"),  # the audience is configured: a token without one is refused
            (unsigned(claims(aud="chat.example.org")), "not valid"),
            (hs256({"exp": claims()["exp"], "aud": "chat.example.org"}), "sub"),
            (hs256({"sub": "u-1", "aud": "chat.example.org"}), "exp"),
            (hs256(claims(sub=7, aud="chat.example.org")), "Subject"),
            (hs256(claims(name="x" * 33, aud="chat.example.org")), "name"),
            (hs256(claims(name="\u202eevil", aud="chat.example.org")), "name"),
            (hs256(claims(name="ad\u034fmin", aud="chat.example.org")), "U+034F"),
            (hs256(claims(rooms=["a*b"], aud="chat.example.org")), "rooms"),
            (hs256(claims(rooms="lobby", aud="chat.example.org")), "rooms"),
            (hs256(claims(mod="yes", aud="chat.example.org")), "mod"),
            ("not-a-token", "not valid"),
        ],
        ids=[
            "expired",
            "wrong audience",
            "no audience",
            "alg none",
            "no sub",
            "no exp",
            "sub not a string",
            "name too long",
            "name with a bidi override",
            "name with a combining grapheme joiner",
            "bad room pattern",
            "rooms not a list",
            "mod not a boolean",
            "garbage",
        ],
    )
    async def test_is_401_on_the_api_and_the_handshake(self, http_server, http_port, http_client, token, says):
        response = await fetch(http_client, http_port, "/api/rooms/lobby/messages", token)
        assert response.code == 401
        assert says in error_of(response)
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="rooms", error="invalid_token"'
        posted = await post(http_client, http_port, "lobby", {"handle": "ann", "message": "x"}, token)
        assert posted.code == 401
        assert await refused_handshake(http_port, "lobby", token) == 401
        stored = await fetch(http_client, http_port, "/api/rooms/lobby/messages")
        assert json.loads(stored.body)["messages"] == []

    @pytest.mark.gen_test
    async def test_a_token_expired_within_the_leeway_is_taken(self, http_server, http_port, http_client):
        token = hs256(claims(seconds=-10, aud="chat.example.org"))
        assert (await fetch(http_client, http_port, "/api/rooms/lobby/messages", token)).code == 200

    @pytest.mark.gen_test
    async def test_without_a_name_the_handle_is_the_sub(self, http_server, http_port, http_client):
        token = hs256(claims("ann", aud="chat.example.org"))
        response = await post(http_client, http_port, "lobby", {"handle": "bob", "message": "x"}, token)
        assert json.loads(response.body)["handle"] == "ann"

    @pytest.mark.gen_test
    async def test_an_hmac_signed_with_the_public_key_is_refused(self, http_server, http_port, http_client, tmp_path):
        # The classic confusion: a key pair's public half used as an HS256 secret. Here the server has a
        # secret, so an RS256 token (any key) must be refused: only the algorithm that fits the key counts.
        token = jwt.encode(claims(aud="chat.example.org"), private_key("RS256"), algorithm="RS256")
        response = await fetch(http_client, http_port, "/api/rooms/lobby/messages", token)
        assert response.code == 401 and "not valid" in error_of(response)

    @pytest.mark.gen_test
    async def test_a_scheme_other_than_bearer_is_refused(self, http_server, http_port, http_client):
        response = await fetch(
            http_client, http_port, "/api/rooms/lobby/messages", headers={"Authorization": "Basic YW5uOnB3"}
        )
        assert response.code == 401 and "Bearer" in error_of(response)


class TestPublicKeyConfusion:
    @pytest.fixture
    def signer(self, tmp_path):
        return Signer("RS256", tmp_path)

    @pytest.fixture
    def config(self, signer):
        return app_config(auth=signer.auth)

    @pytest.mark.gen_test
    async def test_an_hs256_token_keyed_with_the_public_pem_is_refused(
        self, http_server, http_port, http_client, signer
    ):
        with open(signer.auth["jwt_public_key"], "rb") as handle:
            pem = handle.read()
        header = jwt.utils.base64url_encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = jwt.utils.base64url_encode(json.dumps(claims()).encode())
        signature = jwt.utils.base64url_encode(hmac.new(pem, header + b"." + body, hashlib.sha256).digest())
        token = (header + b"." + body + b"." + signature).decode()
        response = await fetch(http_client, http_port, "/api/rooms/lobby/messages", token)
        assert response.code == 401
        assert (await fetch(http_client, http_port, "/api/rooms/lobby/messages", signer.sign(claims()))).code == 200


# -- open mode ---------------------------------------------------------------------------------------


class TestOpenMode:
    @pytest.fixture
    def config(self):
        return app_config(auth={"jwt_secret": SECRET}, moderation={"tokens": [MODERATOR_TOKEN]})

    @pytest.mark.gen_test
    async def test_anyone_without_a_token_is_taken_with_the_handle_they_give(self, http_server, http_port, http_client):
        response = await post(http_client, http_port, "lobby", {"handle": "ann", "message": "hi"})
        assert response.code == 201 and json.loads(response.body)["handle"] == "ann"
        assert (await fetch(http_client, http_port, "/lobby/")).code == 200

    @pytest.mark.gen_test
    async def test_a_bad_token_is_refused_all_the_same(self, http_server, http_port, http_client):
        expired = hs256(claims(seconds=-60))
        assert (await fetch(http_client, http_port, "/api/rooms/lobby/messages", expired)).code == 401
        assert await refused_handshake(http_port, "lobby", expired) == 401
        page = await fetch(http_client, http_port, f"/lobby/?token={expired}")
        assert page.code == 401 and "Sign-in needed" in page.body.decode()

    @pytest.mark.gen_test
    async def test_the_page_shows_the_token_name_and_never_the_token(self, http_server, http_port, http_client):
        token = hs256(claims(name="Ann Signed"))
        page = await fetch(http_client, http_port, f"/lobby/?token={token}")
        body = page.body.decode()
        assert page.code == 200 and token not in body
        assert 'value="Ann Signed" readonly' in body
        assert page.headers["Cache-Control"] == "no-store"

    @pytest.mark.gen_test
    async def test_a_moderator_token_posts_with_the_handle_it_gives(self, http_server, http_port, http_client):
        response = await post(http_client, http_port, "lobby", {"handle": "mod", "message": "hi"}, MODERATOR_TOKEN)
        assert response.code == 201 and json.loads(response.body)["handle"] == "mod"
        wrong = MODERATOR_TOKEN[:-1] + "X"
        assert (await post(http_client, http_port, "lobby", {"handle": "m", "message": "x"}, wrong)).code == 401

    @pytest.mark.gen_test
    async def test_presence_and_typing_go_by_the_token_name(self, http_server, http_port):
        reader = await connect(http_port, "lobby", features="presence,typing")
        assert (await receive_json(reader))["type"] == "presence"
        writer = await connect(http_port, "lobby", hs256(claims(name="Ann Signed")), features="presence")
        await send_json(writer, {"type": "hello", "handle": "someone else"})
        await send_json(writer, {"type": "typing", "handle": "someone else"})
        seen: dict[str, dict] = {}
        while "typing" not in seen or seen.get("presence", {}).get("handles") != ["Ann Signed"]:
            frame = await receive_json(reader)
            seen[frame["type"]] = frame
        assert seen["typing"]["handle"] == "Ann Signed"


# -- token mode --------------------------------------------------------------------------------------


class TestTokenMode:
    @pytest.fixture
    def config(self):
        return app_config(auth={"mode": "token", "jwt_secret": SECRET})

    @pytest.mark.gen_test
    async def test_without_a_token_api_and_handshake_are_401(self, http_server, http_port, http_client):
        response = await fetch(http_client, http_port, "/api/rooms/lobby/messages")
        assert response.code == 401 and "sign-in needed" in error_of(response)
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="rooms"'
        assert (await post(http_client, http_port, "lobby", {"handle": "ann", "message": "x"})).code == 401
        assert await refused_handshake(http_port, "lobby") == 401

    @pytest.mark.gen_test
    async def test_without_a_token_the_page_says_sign_in_is_needed(self, http_server, http_port, http_client):
        page = await fetch(http_client, http_port, "/lobby/")
        assert page.code == 401
        body = page.body.decode()
        assert "Sign-in needed" in body and "page-signin" in body
        assert "/static/room/access.js" in body  # which asks again with the token the tab kept

    @pytest.mark.gen_test
    async def test_with_a_token_everything_answers(self, http_server, http_port, http_client):
        token = hs256(claims(name="Ann Signed"))
        assert (await fetch(http_client, http_port, f"/lobby/?token={token}")).code == 200
        assert (await fetch(http_client, http_port, "/api/rooms/lobby/messages", token)).code == 200
        ws = await connect(http_port, "lobby", token)
        await send_json(ws, {"handle": "x", "message": "signed"})
        assert (await receive_json(ws))["handle"] == "Ann Signed"

    @pytest.mark.gen_test
    async def test_the_home_page_lists_no_rooms(self, http_server, http_port, http_client, app):
        await post_message(app.hub, "busy", "ann", "hello")
        body = (await fetch(http_client, http_port, "/")).body.decode()
        assert "/busy/" not in body


# -- who sent a message --------------------------------------------------------------------------------


MESSAGE_KEYS = {"type", "id", "room", "handle", "message", "timestamp"}


class TestWhoSentAMessage:
    """A token's ``sub`` comes with its messages as ``user``, a moderator's with ``"moderator": true``;
    a message without a token has neither, whatever its frame or body says."""

    @pytest.fixture
    def config(self):
        return app_config(auth={"jwt_secret": SECRET}, moderation={"tokens": [MODERATOR_TOKEN]})

    @staticmethod
    async def history(http_client, port: int) -> list[dict]:
        return json.loads((await fetch(http_client, port, "/api/rooms/lobby/messages")).body)["messages"]

    @staticmethod
    async def page_items(http_client, port: int) -> list[str]:
        """The opening tags of the history's items on the room page (the blank one for live messages not)."""
        body = (await fetch(http_client, port, "/lobby/")).body.decode()
        return re.findall(r'<li class="msg" data-id="[^"]+"[^>]*>', body)

    @pytest.mark.gen_test
    async def test_a_message_sent_with_a_token_carries_its_sub_everywhere(self, http_server, http_port, http_client):
        reader = await connect(http_port, "lobby")
        writer = await connect(http_port, "lobby", hs256(claims('user-7 "<ü>"', name="Ann Signed")))
        claimed = {"user": "someone else", "moderator": True}  # a frame cannot say who sent it
        await send_json(writer, {"handle": "mallory", "message": "hi", "client_id": "c-1", **claimed})
        frames = [await receive_json(ws) for ws in (writer, reader)]
        frame = frames[0]
        assert frames[1] == frame
        assert (frame["handle"], frame["user"], "moderator" in frame) == ("Ann Signed", 'user-7 "<ü>"', False)
        await send_json(writer, {"handle": "mallory", "message": "hi", "client_id": "c-1"})  # a resend
        assert await receive_json(writer) == frame
        assert await self.history(http_client, http_port) == [frame]
        [item] = await self.page_items(http_client, http_port)
        assert item == f'<li class="msg" data-id="{frame["id"]}" data-user="user-7 &quot;&lt;ü&gt;&quot;">'

    @pytest.mark.gen_test
    async def test_a_post_with_a_token_carries_its_sub(self, http_server, http_port, http_client):
        reader = await connect(http_port, "lobby")
        token = hs256(claims("user-7", name="Ann Signed"))
        response = await post(http_client, http_port, "lobby", {"handle": "x", "message": "hi", "user": "u-0"}, token)
        assert response.code == 201
        posted = json.loads(response.body)
        assert (posted["handle"], posted["user"], "moderator" in posted) == ("Ann Signed", "user-7", False)
        assert await receive_json(reader) == posted
        assert await self.history(http_client, http_port) == [posted]

    @pytest.mark.gen_test
    async def test_a_moderator_tokens_post_carries_moderator_true(self, http_server, http_port, http_client):
        reader = await connect(http_port, "lobby")
        response = await post(http_client, http_port, "lobby", {"handle": "mod", "message": "hi"}, MODERATOR_TOKEN)
        assert response.code == 201
        posted = json.loads(response.body)
        assert (posted["handle"], posted["moderator"], "user" in posted) == ("mod", True, False)
        assert await receive_json(reader) == posted
        assert await self.history(http_client, http_port) == [posted]
        [item] = await self.page_items(http_client, http_port)
        assert item == f'<li class="msg" data-id="{posted["id"]}" data-moderator="true">'

    @pytest.mark.gen_test
    async def test_a_signed_moderator_carries_both(self, http_server, http_port, http_client):
        writer = await connect(http_port, "lobby", hs256(claims("mod-7", name="Moe", mod=True)))
        await send_json(writer, {"handle": "x", "message": "hi"})
        frame = await receive_json(writer)
        assert (frame["handle"], frame["user"], frame["moderator"]) == ("Moe", "mod-7", True)
        [item] = await self.page_items(http_client, http_port)
        assert item == f'<li class="msg" data-id="{frame["id"]}" data-user="mod-7" data-moderator="true">'

    @pytest.mark.gen_test
    async def test_a_message_without_a_token_has_neither_whatever_it_claims(self, http_server, http_port, http_client):
        reader = await connect(http_port, "lobby")
        claimed = {"user": "user-7", "moderator": True}
        await send_json(reader, {"handle": "ann", "message": "by socket", **claimed})
        by_socket = await receive_json(reader)
        response = await post(http_client, http_port, "lobby", {"handle": "bob", "message": "by post", **claimed})
        assert response.code == 201
        by_post = json.loads(response.body)
        assert await receive_json(reader) == by_post
        for message in (by_socket, by_post, *await self.history(http_client, http_port)):
            assert set(message) == MESSAGE_KEYS
        items = await self.page_items(http_client, http_port)
        assert items == [f'<li class="msg" data-id="{m["id"]}">' for m in (by_socket, by_post)]  # as it always was

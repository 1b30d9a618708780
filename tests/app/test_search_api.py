"""``GET /api/rooms/<label>/search`` over real HTTP: what it finds and in which shape, its 400s, private rooms
as on every other route, and ``limits.searches_per_minute`` per client address (proven with the bucket's
arithmetic on the app's clock, never with a sleep)."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from rooms.web.app import make_app
from tests.support.apps import app_config, backend_settings, shut_down
from tests.support.factories.memory import FACTORIES as MEMORY
from tests.support.moderation import call, moderated_config, say
from tests.support.tokens import SECRET, claims, hs256


async def search(http_client, port, room: str, query: str | None = None, token=None, address=None, **arguments):
    """``(status, decoded JSON)`` of one search; ``query`` is sent percent-encoded as ``q``."""
    parts = [] if query is None else [f"q={quote(query)}"]
    parts += [f"{name}={value}" for name, value in arguments.items()]
    headers = {} if address is None else {"X-Forwarded-For": address}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    response = await http_client.fetch(
        f"http://127.0.0.1:{port}/api/rooms/{room}/search?{'&'.join(parts)}", headers=headers, raise_error=False
    )
    return response.code, json.loads(response.body)


class TestFinding:
    """On every backend: the same answers over HTTP, whichever store finds them."""

    @pytest.fixture
    def config(self):
        return moderated_config()

    @pytest.fixture
    def app(self, app_on_each_backend):
        return app_on_each_backend

    @pytest.mark.gen_test(timeout=20)
    async def test_matches_come_newest_first_shaped_as_in_the_messages_route_and_page_on_with_before(
        self, backend_name, http_server, http_port, http_client
    ):
        for n in range(7):
            await say(http_client, http_port, "lobby", "ann", f"Release note {n}" if n % 2 else f"chatter {n}")
        await say(http_client, http_port, "other", "bob", "release elsewhere")
        status, listed = await call(http_client, http_port, "GET", "/api/rooms/lobby/messages", token=None)
        assert status == 200
        matching = [message for message in reversed(listed["messages"]) if "Release" in message["message"]]

        assert await search(http_client, http_port, "lobby", "RELEASE no", limit=2) == (
            200,
            {"room": "lobby", "messages": matching[:2], "has_more": True},
        )
        assert await search(http_client, http_port, "lobby", "release", before=matching[1]["id"]) == (
            200,
            {"room": "lobby", "messages": matching[2:], "has_more": False},
        )
        assert await search(http_client, http_port, "lobby", "releas note ") == (
            200,
            {"room": "lobby", "messages": [], "has_more": False},
        )
        assert (await search(http_client, http_port, "lobby", "chat"))[1]["messages"][0]["message"] == "chatter 6"
        assert await search(http_client, http_port, "empty-room", "release") == (
            200,
            {"room": "empty-room", "messages": [], "has_more": False},
        )

    @pytest.mark.gen_test(timeout=20)
    async def test_a_deleted_message_is_never_found(self, backend_name, http_server, http_port, http_client):
        _, first = await say(http_client, http_port, "lobby", "ann", "the launch code is 1234")
        _, second = await say(http_client, http_port, "lobby", "ann", "the launch is at noon")
        status, _ = await call(http_client, http_port, "DELETE", f"/api/rooms/lobby/messages/{first['id']}")
        assert status == 204
        code, found = await search(http_client, http_port, "lobby", "launch")
        assert (code, [message["id"] for message in found["messages"]]) == (200, [second["id"]])
        assert (await search(http_client, http_port, "lobby", "code 1234"))[1]["messages"] == []

    @pytest.mark.gen_test(timeout=20)
    async def test_the_limits_of_q_and_limit_are_inclusive(self, backend_name, http_server, http_port, http_client):
        text = "x" * 90 + " padding1"
        _, posted = await say(http_client, http_port, "lobby", "ann", text)
        assert len(text + " ") == 100
        code, found = await search(http_client, http_port, "lobby", text + " ", limit=50)
        assert (code, [message["id"] for message in found["messages"]]) == (200, [posted["id"]])
        assert (await search(http_client, http_port, "lobby", "x", limit=1))[0] == 200


BAD_REQUESTS = [
    ({}, "'q' is required: the words to search for"),
    ({"query": ""}, "'q' must be 1 to 100 characters, not 0"),
    ({"query": "a" * 101}, "'q' must be 1 to 100 characters, not 101"),
    ({"query": "ok", "limit": "0"}, "'limit' must be a whole number from 1 to 50, not '0'"),
    ({"query": "ok", "limit": "51"}, "'limit' must be a whole number from 1 to 50, not '51'"),
    ({"query": "ok", "limit": "ten"}, "'limit' must be a whole number from 1 to 50, not 'ten'"),
    ({"query": "ok", "limit": "-1"}, "'limit' must be a whole number from 1 to 50, not '-1'"),
    ({"query": "ok", "before": "yesterday"}, "'before' is not a message id: 'yesterday'"),
]


@pytest.mark.gen_test(timeout=20)
@pytest.mark.parametrize(("arguments", "error"), BAD_REQUESTS)
async def test_bad_arguments_are_400_naming_them(http_server, http_port, http_client, arguments, error):
    query = arguments.pop("query", None)
    assert await search(http_client, http_port, "lobby", query, **arguments) == (400, {"error": error})


class TestPrivateRooms:
    @pytest.fixture
    def config(self):
        return app_config(auth={"jwt_secret": SECRET}, rooms={"private": ["team-*"]})

    @pytest.mark.gen_test(timeout=20)
    async def test_a_private_room_is_404_without_a_token_that_covers_it_whatever_is_asked(
        self, http_server, http_port, http_client
    ):
        member = hs256(claims(rooms=["team-*"]))
        assert (await say(http_client, http_port, "team-a", "ann", "private plans", token=member))[0] == 201
        assert (await search(http_client, http_port, "x.y", "plans")) == (404, {"error": "Not found"})
        absent = {"error": "Not found"}
        for token in (None, hs256(claims(rooms=["lobby"]))):
            assert await search(http_client, http_port, "team-a", "plans", token=token) == (404, absent)
            assert await search(http_client, http_port, "team-a", "", token=token, limit="0") == (404, absent)
        code, found = await search(http_client, http_port, "team-a", "plans", token=member)
        assert (code, [message["message"] for message in found["messages"]]) == (200, ["private plans"])


class TestTokenMode:
    @pytest.fixture
    def config(self):
        return app_config(auth={"mode": "token", "jwt_secret": SECRET})

    @pytest.mark.gen_test(timeout=20)
    async def test_without_a_valid_token_a_search_is_401(self, http_server, http_port, http_client):
        expired = hs256(claims(seconds=-60))
        for token in (None, expired, "not-a-token"):
            code, body = await search(http_client, http_port, "lobby", "hello", token=token)
            assert code == 401 and set(body) == {"error"}
        assert (await search(http_client, http_port, "lobby", "hello", token=hs256(claims())))[0] == 200


class Clock:
    """The app's clock for the search limit: moved on by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


SEARCHES_PER_MINUTE = 3


class TestSearchesPerAddress:
    @pytest.fixture
    def clock(self):
        return Clock()

    @pytest.fixture
    def app(self, clock, io_loop):
        config = app_config(limits={"searches_per_minute": SEARCHES_PER_MINUTE})
        factory = MEMORY["memory"]()
        backend = io_loop.run_sync(lambda: factory.create(**backend_settings(config)))
        application = make_app(config, backend, clock)
        yield application
        io_loop.run_sync(lambda: shut_down(application, backend))

    @pytest.mark.gen_test(timeout=20)
    async def test_past_the_limit_429_until_the_bucket_refills_over_the_minute(
        self, http_server, http_port, http_client, clock
    ):
        async def status(address: str = "203.0.113.7") -> int:
            return (await search(http_client, http_port, "lobby", "hello", address=address))[0]

        # A bad request costs nothing: it never reaches the limit.
        assert [(await search(http_client, http_port, "lobby", ""))[0] for _ in range(5)] == [400] * 5
        assert [await status() for _ in range(SEARCHES_PER_MINUTE)] == [200] * SEARCHES_PER_MINUTE
        code, body = await search(http_client, http_port, "lobby", "hello", address="203.0.113.7")
        assert (code, set(body)) == (429, {"error"})
        assert await status("203.0.113.8") == 200  # another address has a bucket of its own
        # 3 a minute is one every 20 s: 19.9 s later still none, at 20 s exactly one.
        clock.now += 19.9
        assert await status() == 429
        clock.now += 0.1
        assert [await status(), await status()] == [200, 429]
        # A whole minute refills the bucket, and never past its size.
        clock.now += 600
        assert [await status() for _ in range(SEARCHES_PER_MINUTE + 1)] == [200] * SEARCHES_PER_MINUTE + [429]

    @pytest.mark.gen_test(timeout=20)
    async def test_an_ipv6_client_is_counted_by_its_64(self, http_server, http_port, http_client, clock):
        async def status(address: str) -> int:
            return (await search(http_client, http_port, "lobby", "hello", address=address))[0]

        one_host = ["2001:db8:1:2::1", "2001:db8:1:2:aaaa::2", "2001:db8:1:2:ffff::3"]
        assert [await status(address) for address in one_host] == [200] * 3
        assert await status("2001:db8:1:2::99") == 429  # the same /64
        assert await status("2001:db8:1:3::1") == 200  # the next /64 has its own

"""The limits per client address of docs/protocol.md, over real sockets and HTTP: open sockets, messages over all of an
address's sockets and POSTs, new rooms, invalid frames, and frames of any kind."""

from __future__ import annotations

import asyncio
import json
import os
import uuid

import pytest
from tornado.httpclient import HTTPClientError

from rooms.access.addresses import limit_key
from tests.support.apps import app_config
from tests.support.clients import (
    PING,
    connect,
    raw_handshake,
    read_until_close_frame,
    receive_json,
    send_json,
    wait_closed,
)
from tests.support.waiting import eventually

JSON = {"Content-Type": "application/json"}


def label() -> str:
    return f"r-{uuid.uuid4().hex[:12]}"


async def post(http_client, port: int, room: str, text: str, headers: dict[str, str] | None = None):
    return await http_client.fetch(
        f"http://127.0.0.1:{port}/api/rooms/{room}/messages",
        method="POST",
        body=json.dumps({"handle": "ann", "message": text}),
        headers={**JSON, **(headers or {})},
        raise_error=False,
    )


def masked_frame(opcode: int, payload: bytes = b"", final: bool = True) -> bytes:
    """A client frame (RFC 6455 5.2): clients mask everything they send."""
    mask = os.urandom(4)
    head = bytes([(0x80 if final else 0) | opcode, 0x80 | len(payload)]) + mask
    return head + bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))


class TestOpenSockets:
    @pytest.fixture
    def config(self):
        return app_config(limits={"connections_per_address": 3})

    @pytest.mark.gen_test
    async def test_one_more_than_the_limit_is_refused_with_429_and_a_closed_one_frees_its_place(
        self, http_server, http_port
    ):
        room = label()
        sockets = [await connect(http_port, room) for _ in range(3)]
        with pytest.raises(HTTPClientError) as refused:
            await connect(http_port, room)
        assert refused.value.code == 429
        sockets.pop().close()

        async def admitted():
            try:
                sockets.append(await connect(http_port, room))
            except HTTPClientError:
                return False
            return True

        await eventually(admitted)
        for ws in sockets:
            ws.close()

    @pytest.mark.gen_test
    async def test_refused_handshakes_hold_no_place_and_join_no_room(
        self, http_server, http_port, http_client, app_backend
    ):
        room = label()
        backend = app_backend
        subscribed: list[str] = []
        subscribe = backend.subscribe

        async def counted(room: str) -> str:
            subscribed.append(room)
            return await subscribe(room)

        backend.subscribe = counted
        for _ in range(5):
            with pytest.raises(HTTPClientError) as foreign:
                await connect(http_port, room, headers={"Origin": "http://evil.example"})
            assert foreign.value.code == 403
            plain = await http_client.fetch(f"http://127.0.0.1:{http_port}/chat/{room}/", raise_error=False)
            assert plain.code == 400
        assert subscribed == []  # on Redis each would have cost a SUBSCRIBE and a read
        sockets = [await connect(http_port, room) for _ in range(3)]
        assert subscribed == [room]
        for ws in sockets:
            ws.close()

    @pytest.mark.gen_test
    async def test_a_trusted_proxy_names_the_client_and_each_client_has_its_own_limit(self, http_server, http_port):
        """The test client is on loopback, which is trusted by default: X-Forwarded-For names the client."""
        room = label()
        first = [await connect(http_port, room, headers={"X-Forwarded-For": "203.0.113.7"}) for _ in range(3)]
        other = await connect(http_port, room, headers={"X-Forwarded-For": "203.0.113.8"})
        with pytest.raises(HTTPClientError) as refused:
            await connect(http_port, room, headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.7"})
        assert refused.value.code == 429
        for ws in [*first, other]:
            ws.close()


class TestUntrustedPeer:
    @pytest.fixture
    def config(self):
        return app_config(server={"trusted_proxies": ["10.0.0.0/8"]}, limits={"connections_per_address": 2})

    @pytest.mark.gen_test
    async def test_forwarded_headers_from_a_peer_that_is_not_a_trusted_proxy_are_ignored(self, http_server, http_port):
        room = label()
        sockets = [
            await connect(http_port, room, headers={"X-Forwarded-For": "203.0.113.1"}),
            await connect(http_port, room, headers={"X-Real-IP": "203.0.113.2"}),
        ]
        with pytest.raises(HTTPClientError) as refused:
            await connect(http_port, room, headers={"X-Forwarded-For": "203.0.113.3"})
        assert refused.value.code == 429  # all three were 127.0.0.1
        for ws in sockets:
            ws.close()


class TestClientAddressHeader:
    """Exactly one header names the client (``server.client_address_header``): the other is ignored, so a
    client cannot pick its address through the header its proxy does not set."""

    @pytest.fixture(params=["x-forwarded-for", "x-real-ip"])
    def header(self, request):
        return request.param

    @pytest.fixture
    def config(self, header):
        server = {} if header == "x-forwarded-for" else {"client_address_header": header}  # the default, or set
        return app_config(server=server, limits={"connections_per_address": 1})

    @pytest.mark.gen_test
    async def test_only_the_configured_header_names_the_client(self, http_server, http_port, header):
        room = label()
        other = "X-Real-IP" if header == "x-forwarded-for" else "X-Forwarded-For"
        named = await connect(http_port, room, headers={header: "203.0.113.70", other: "203.0.113.71"})
        # The same client, whatever the other header says: its one place is taken.
        with pytest.raises(HTTPClientError) as refused:
            await connect(http_port, room, headers={header: "203.0.113.70", other: "198.51.100.9"})
        assert refused.value.code == 429
        # The other header alone names nobody: the client is the peer, 127.0.0.1, whose place this takes.
        loopback = await connect(http_port, room, headers={other: "203.0.113.72"})
        with pytest.raises(HTTPClientError) as refused:
            await connect(http_port, room, headers={other: "203.0.113.73"})
        assert refused.value.code == 429
        for ws in (named, loopback):
            ws.close()


def test_an_ipv6_address_is_limited_by_its_64_and_an_ipv4_mapped_one_as_ipv4():
    assert limit_key("2001:db8:1:2:aaaa::1") == limit_key("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert limit_key("2001:db8:1:3::1") != limit_key("2001:db8:1:2::1")
    assert limit_key("::ffff:203.0.113.9") == limit_key("203.0.113.9") == "203.0.113.9"


class TestMessagesPerAddress:
    @pytest.fixture
    def config(self):
        # Each socket alone could send 100 at once: the address's bucket is what holds them.
        return app_config(
            limits={
                "messages_per_second": 100,
                "burst": 100,
                "address_messages_per_second": 0.001,
                "address_burst": 4,
            }
        )

    @pytest.mark.gen_test
    async def test_sockets_and_posts_of_an_address_share_one_bucket_that_reconnecting_does_not_refill(
        self, http_server, http_port, http_client
    ):
        room = label()
        first = await connect(http_port, room)
        for n in range(2):
            await send_json(first, {"handle": "ann", "message": f"socket {n}"})
            assert (await receive_json(first))["message"] == f"socket {n}"
        assert (await post(http_client, http_port, room, "post")).code == 201
        assert (await receive_json(first))["message"] == "post"
        second = await connect(http_port, room)
        await send_json(second, {"handle": "ann", "message": "second socket"})
        assert (await receive_json(second))["message"] == "second socket"
        # Four sent: the address's bucket is empty for its sockets, new ones included, and its POSTs.
        await send_json(second, {"handle": "ann", "message": "one too many"})
        assert (await receive_json(second))["code"] == "rate_limited"
        first.close()
        second.close()
        third = await connect(http_port, room)
        await send_json(third, {"handle": "ann", "message": "after reconnecting"})
        assert (await receive_json(third))["code"] == "rate_limited"
        refused = await post(http_client, http_port, room, "over HTTP")
        assert refused.code == 429 and "error" in json.loads(refused.body)
        # Another address has a bucket of its own.
        other = await post(http_client, http_port, room, "elsewhere", {"X-Forwarded-For": "203.0.113.50"})
        assert other.code == 201
        third.close()


class TestNewRooms:
    @pytest.fixture
    def config(self):
        return app_config(limits={"new_rooms_per_hour": 2, "messages_per_second": 100, "burst": 100})

    @pytest.fixture
    def app(self, app_on_each_backend):
        return app_on_each_backend

    @pytest.mark.gen_test(timeout=30)
    async def test_first_messages_in_rooms_without_history_are_limited_per_address(
        self, backend_name, http_server, http_port, http_client
    ):
        made = [label(), label()]
        for room in made:
            assert (await post(http_client, http_port, room, "first")).code == 201
        third = label()
        refused = await post(http_client, http_port, third, "first")
        assert refused.code == 429, refused.body
        assert "room" in json.loads(refused.body)["error"]
        page = await http_client.fetch(f"http://127.0.0.1:{http_port}/api/rooms/{third}/messages")
        assert json.loads(page.body)["messages"] == []  # nothing stored for it
        # Rooms that have history take messages as before; a socket gets the refusal as rate_limited.
        assert (await post(http_client, http_port, made[0], "second")).code == 201
        ws = await connect(http_port, label())
        await send_json(ws, {"handle": "ann", "message": "first"})
        assert (await receive_json(ws))["code"] == "rate_limited"
        await send_json(ws, {"handle": "ann", "message": "still a first"})
        assert (await receive_json(ws))["code"] == "rate_limited"
        ws.close()
        other = await post(http_client, http_port, label(), "first", {"X-Forwarded-For": "203.0.113.60"})
        assert other.code == 201


class TestFrames:
    @pytest.fixture
    def config(self):
        return app_config(limits={"burst": 3, "messages_per_second": 0.5})

    @pytest.mark.gen_test
    async def test_invalid_frames_past_the_burst_within_ten_seconds_close_the_socket_with_1008(
        self, http_server, http_port
    ):
        ws = await connect(http_port, label())
        for _ in range(4):
            await ws.write_message("{not json")
        for _ in range(3):
            assert (await receive_json(ws))["code"] == "invalid_json"
        assert await wait_closed(ws) == 1008

    @pytest.mark.gen_test
    @pytest.mark.parametrize(
        "flood",
        [
            pytest.param(lambda: masked_frame(PING, b"x"), id="pings"),
            pytest.param(lambda: masked_frame(0x0, final=False), id="empty-continuations"),
        ],
    )
    async def test_a_flood_of_frames_that_carry_nothing_is_closed_with_1008(self, http_server, http_port, flood):
        sock = await raw_handshake(http_port, f"/chat/{label()}/")
        loop = asyncio.get_running_loop()
        start = masked_frame(0x1, b"", final=False)  # a text message begun and never finished
        frames = start + b"".join(flood() for _ in range(3000))
        try:
            await loop.sock_sendall(sock, frames)
        except ConnectionError:
            pass  # the server may have closed it before it took all of them
        assert await read_until_close_frame(sock) == 1008
        sock.close()

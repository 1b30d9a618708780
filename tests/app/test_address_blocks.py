"""The IPv6 blocks of docs/protocol.md (Limits): counted by its /64 and also by its /56 and its /48, which may use 4
and 16 times what one address may (``limits.ipv6_56_factor``, ``limits.ipv6_48_factor``), for open sockets,
messages and new rooms alike.

The server is reached over loopback, a trusted proxy by default: ``X-Forwarded-For`` names each IPv6 client.
"""

from __future__ import annotations

import json
import uuid

import pytest
from tornado.httpclient import HTTPClientError

from backends.address_blocks import AddressBlocks
from backends.base import AddressQuota, NewMessage, utc_timestamp
from backends.errors import QuotaExceeded
from rooms.access.addresses import limit_key
from rooms.room.rates import RatePolicy
from tests.support.apps import app_config
from tests.support.clients import connect, receive_json, send_json
from tests.support.factories import all_factories
from tests.support.waiting import eventually

FACTORIES = all_factories()
JSON = {"Content-Type": "application/json"}


def label() -> str:
    return f"r-{uuid.uuid4().hex[:12]}"


def v6(site: int, host: int, broker: int = 1) -> str:
    """An address of the /64 number ``host`` in the /56 number ``site`` of the /48 ``2001:db8:<broker>::/48``."""
    return f"2001:db8:{broker:x}:{site:02x}{host:02x}::1"


def forwarded(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def post(http_client, port: int, room: str, address: str, text: str = "hi"):
    return await http_client.fetch(
        f"http://127.0.0.1:{port}/api/rooms/{room}/messages",
        method="POST",
        body=json.dumps({"handle": "ann", "message": text}),
        headers={**JSON, **forwarded(address)},
        raise_error=False,
    )


async def handshake(port: int, room: str, address: str):
    """The open socket, or the refusal's status."""
    try:
        return await connect(port, room, headers=forwarded(address))
    except HTTPClientError as exc:
        return exc.code


class TestOpenSockets:
    @pytest.fixture
    def config(self):
        return app_config(limits={"connections_per_address": 1})  # a /56 may hold 4, a /48 16

    @pytest.mark.gen_test(timeout=30)
    async def test_a_56_holds_4_times_and_a_48_16_times_what_one_address_may(self, http_server, http_port):
        room = label()
        sockets = [await connect(http_port, room, headers=forwarded(v6(0, host))) for host in range(4)]
        assert await handshake(http_port, room, v6(0, 4)) == 429  # a fifth /64 of the same /56
        sockets += [
            await connect(http_port, room, headers=forwarded(v6(site, host))) for site in (1, 2, 3) for host in range(4)
        ]
        assert await handshake(http_port, room, v6(4, 0)) == 429  # the /48 holds 16
        other = await connect(http_port, room, headers=forwarded(v6(0, 0, broker=2)))
        sockets.pop().close()

        async def admitted() -> bool:
            opened = await handshake(http_port, room, v6(4, 0))
            if isinstance(opened, int):
                return False
            sockets.append(opened)
            return True

        await eventually(admitted)  # a socket closed frees its place in its /48
        for ws in [*sockets, other]:
            ws.close()


class TestMessages:
    @pytest.fixture
    def config(self):
        # Each socket alone could send 100 at once: the address's buckets are what hold them.
        return app_config(
            limits={"messages_per_second": 100, "burst": 100, "address_messages_per_second": 0.001, "address_burst": 2}
        )

    @pytest.mark.gen_test(timeout=30)
    async def test_the_56_and_the_48_share_a_bucket_of_4_and_16_times_one_addresss(
        self, http_server, http_port, http_client
    ):
        room = label()
        ws = await connect(http_port, room, headers=forwarded(v6(0, 0)))
        for n in range(2):
            await send_json(ws, {"handle": "ann", "message": f"socket {n}"})
            assert (await receive_json(ws))["message"] == f"socket {n}"
        for host in (1, 2, 3):
            for _ in range(2):
                assert (await post(http_client, http_port, room, v6(0, host))).code == 201
        # The /56 sent its 8: a fifth /64 of it is refused, on a socket as by POST.
        refused = await post(http_client, http_port, room, v6(0, 4))
        assert refused.code == 429 and "error" in json.loads(refused.body)
        late = await connect(http_port, room, headers=forwarded(v6(0, 5)))
        await send_json(late, {"handle": "ann", "message": "one too many"})
        assert (await receive_json(late))["code"] == "rate_limited"
        for site in (1, 2, 3):
            for host in range(4):
                assert (await post(http_client, http_port, room, v6(site, host))).code == 201
                assert (await post(http_client, http_port, room, v6(site, host))).code == 201
        assert (await post(http_client, http_port, room, v6(4, 0))).code == 429  # the /48 sent its 32
        assert (await post(http_client, http_port, room, v6(0, 0, broker=2))).code == 201
        for socket in (ws, late):
            socket.close()


class TestNewRooms:
    @pytest.fixture
    def config(self):
        return app_config(limits={"new_rooms_per_hour": 1, "messages_per_second": 100, "burst": 100})

    @pytest.fixture
    def app(self, app_on_each_backend):
        return app_on_each_backend

    @pytest.mark.gen_test(timeout=60)
    async def test_a_56_makes_4_times_and_a_48_16_times_the_rooms_of_one_address(
        self, backend_name, http_server, http_port, http_client
    ):
        for host in range(4):
            assert (await post(http_client, http_port, label(), v6(0, host))).code == 201
        refused = await post(http_client, http_port, label(), v6(0, 4))
        assert refused.code == 429 and "room" in json.loads(refused.body)["error"]
        for site in (1, 2, 3):
            for host in range(4):
                assert (await post(http_client, http_port, label(), v6(site, host))).code == 201
        assert (await post(http_client, http_port, label(), v6(4, 0))).code == 429
        assert (await post(http_client, http_port, label(), v6(0, 0, broker=2))).code == 201


class TestFactorsFromTheConfig:
    @pytest.fixture
    def config(self):
        return app_config(limits={"connections_per_address": 1, "ipv6_56_factor": 2, "ipv6_48_factor": 3})

    @pytest.mark.gen_test
    async def test_the_factors_are_the_config_s(self, http_server, http_port):
        room = label()
        sockets = [await connect(http_port, room, headers=forwarded(v6(0, host))) for host in range(2)]
        assert await handshake(http_port, room, v6(0, 2)) == 429
        sockets.append(await connect(http_port, room, headers=forwarded(v6(1, 0))))
        assert await handshake(http_port, room, v6(2, 0)) == 429
        for ws in sockets:
            ws.close()


def test_an_ipv6_client_counts_in_its_64_56_and_48_and_an_ipv4_one_alone():
    blocks = AddressBlocks(ipv6_56_factor=4, ipv6_48_factor=16)
    assert blocks.of(limit_key("2001:db8:1:2a3::9")) == (
        ("2001:db8:1:2a3::/64", 1),
        ("2001:db8:1:200::/56", 4),
        ("2001:db8:1::/48", 16),
    )
    assert blocks.of(limit_key("::ffff:203.0.113.9")) == (("203.0.113.9", 1),)
    assert blocks.of("") == (("", 1),)


def test_rate_policy_counts_sockets_and_messages_in_every_block():
    rates = RatePolicy(100, 100, 0.001, 1, 1, AddressBlocks(ipv6_56_factor=2, ipv6_48_factor=3))
    assert rates.open_connection(v6(0, 0)) and rates.open_connection(v6(0, 1))
    assert not rates.open_connection(v6(0, 2))  # the /56 holds 2
    assert rates.open_connection(v6(1, 0))
    assert not rates.open_connection(v6(2, 0))  # the /48 holds 3
    rates.close_connection(v6(0, 0))
    assert rates.open_connection(v6(2, 0))
    assert rates.open_connection("203.0.113.1") and not rates.open_connection("203.0.113.1")
    assert rates.for_request(v6(0, 0)).take() and rates.for_request(v6(0, 1)).take()
    assert not rates.for_request(v6(0, 2)).take()  # the /56's bucket of 2 is empty
    assert rates.for_connection(v6(1, 0)).take()
    assert not rates.for_request(v6(2, 0)).take()  # the /48's bucket of 3 is empty
    assert rates.for_request("203.0.113.1").take() and not rates.for_request("203.0.113.1").take()


@pytest.mark.parametrize("name", sorted(name for name in FACTORIES if name.startswith("redis")))
@pytest.mark.gen_test(timeout=60)
async def test_redis_counts_the_messages_of_every_block_across_processes(name):
    """The quota several processes share on Redis (each process also holds its own buckets): two
    backends stand for two processes, and on a cluster a sender's buckets are in one slot."""
    factory = FACTORIES[name]()
    quota = AddressQuota(new_rooms_per_hour=0, messages_per_second=0.001, burst=1)  # a /56 4, a /48 16
    processes = [await factory.create(quota=quota), await factory.create(quota=quota)]
    sent: list[str] = []

    async def send(address: str) -> bool:
        backend = processes[len(sent) % 2]
        try:
            await backend.store(NewMessage("lobby", "ann", address, None, utc_timestamp(), limit_key(address)))
        except QuotaExceeded:
            return False
        sent.append(address)
        return True

    try:
        assert [await send(v6(0, host)) for host in range(5)] == [True] * 4 + [False]
        for site in (1, 2, 3):
            assert [await send(v6(site, host)) for host in range(4)] == [True] * 4
        assert not await send(v6(4, 0))
        assert await send(v6(0, 0, broker=2)) and not await send(v6(0, 0, broker=2))
        stored = (await processes[0].history("lobby", 50)).messages
        assert [message.message for message in stored] == sent and len(sent) == 17
    finally:
        for backend in processes:
            await backend.close()
        await factory.dispose()

"""Several server.py processes on one Redis act as one server: one room, one order, one history; the
same on a Sentinel set and on a Redis Cluster (``DEPLOYMENTS``)."""

from __future__ import annotations

import asyncio
import json
import re
from functools import partial

import pytest
import redis.asyncio as redis
from tornado.httpclient import AsyncHTTPClient

from backends.redis.keys import RedisKeys
from tests.support.clients import send_json
from tests.support.factories.redis_cluster import shared_cluster
from tests.support.factories.redis_sentinel import shared_sentinel_set
from tests.support.processes import ServerProcess
from tests.support.redis import (
    FAST_CONFIG,
    REDIS_URL,
    Peer,
    delete_prefix,
    history_ids,
    prefixed_url,
    require_redis,
    unique_prefix,
    wait_healthy,
)
from tests.support.waiting import eventually

PROCESSES = 3
CLIENTS_PER_PROCESS = 3
MESSAGES_PER_SENDER = 10
JSON_TYPE = {"Content-Type": "application/json"}


DEPLOYMENTS = ("redis", "redis-sentinel", "redis-cluster")


async def base_url(deployment: str) -> str:
    """The backend URL of a deployment, without options (the Sentinel set and the cluster are shared
    with the contract suite's factories)."""
    if deployment == "redis-sentinel":
        return (await shared_sentinel_set()).url()
    if deployment == "redis-cluster":
        return (await shared_cluster()).url()
    await require_redis()
    return REDIS_URL


async def delete_keys(deployment: str, prefix: str) -> None:
    if deployment == "redis-sentinel":
        await delete_prefix(f"redis://127.0.0.1:{await (await shared_sentinel_set()).master_port()}/0", prefix)
    elif deployment == "redis-cluster":
        await (await shared_cluster()).delete_keys(prefix)
    else:
        await delete_prefix(REDIS_URL, prefix)


async def tear_down(peers: list[Peer], servers: list[ServerProcess], prefix: str, deployment: str = "redis") -> None:
    for peer in peers:
        await peer.close()
    for server in servers:
        server.stop()
    await delete_keys(deployment, prefix)


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
@pytest.mark.gen_test(timeout=90)
async def test_clients_spread_over_processes_receive_every_message_in_one_order_that_history_agrees_with(deployment):
    url = await base_url(deployment)
    prefix = unique_prefix()
    servers = [ServerProcess(prefixed_url(url, prefix), config=FAST_CONFIG) for _ in range(PROCESSES)]
    peers: list[Peer] = []
    try:
        await asyncio.gather(*(wait_healthy(server) for server in servers))
        for number, server in enumerate(servers):
            for client in range(CLIENTS_PER_PROCESS):
                peers.append(await Peer.join(server.port, "lobby", f"p{number}c{client}"))
        senders = peers[::CLIENTS_PER_PROCESS]  # the first client on each process

        async def send_all(peer: Peer) -> None:
            for n in range(MESSAGES_PER_SENDER):
                await send_json(peer.ws, {"handle": peer.name, "message": f"{peer.name} {n}"})
                await asyncio.sleep(0)

        await asyncio.gather(*(send_all(sender) for sender in senders))
        total = len(senders) * MESSAGES_PER_SENDER
        await asyncio.gather(*(peer.wait_until(lambda p: len(p.messages()) >= total) for peer in peers))

        order = [message["id"] for message in peers[0].messages()]
        for peer in peers:
            assert [message["id"] for message in peer.messages()] == order, peer.name
            assert not [frame for frame in peer.frames if frame.get("type") != "message"]
        sent = {f"{sender.name} {n}" for sender in senders for n in range(MESSAGES_PER_SENDER)}
        assert {message["message"] for message in peers[0].messages()} == sent
        for sender in senders:  # each sender's own messages in the order it sent them
            own = [m["message"] for m in peers[0].messages() if m["handle"] == sender.name]
            assert own == [f"{sender.name} {n}" for n in range(MESSAGES_PER_SENDER)]
        for server in servers:
            assert await history_ids(server.port, "lobby") == order
    finally:
        await tear_down(peers, servers, prefix, deployment)


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
@pytest.mark.gen_test(timeout=60)
async def test_busiest_rooms_and_cluster_counters_cover_every_process(deployment):
    prefix = unique_prefix()
    url = prefixed_url(await base_url(deployment), prefix, ping_interval=0.2)
    servers = [ServerProcess(url, config=FAST_CONFIG) for _ in range(2)]
    try:
        await asyncio.gather(*(wait_healthy(server) for server in servers))
        client = AsyncHTTPClient()
        for server, count in ((servers[0], 3), (servers[1], 2)):
            for n in range(count):
                body = json.dumps({"handle": "ann", "message": f"hi {n}"})
                response = await client.fetch(
                    f"{server.base_url}/api/rooms/busy-room/messages", method="POST", body=body, headers=JSON_TYPE
                )
                assert response.code == 201

        home = (await client.fetch(f"{servers[1].base_url}/")).body.decode()
        assert "busy-room" in home

        async def counted_all_five(server: ServerProcess) -> bool:
            text = (await client.fetch(f"{server.base_url}/metrics")).body.decode()
            match = re.search(r"^rooms_cluster_messages_stored_total (\S+)$", text, re.MULTILINE)
            return match is not None and float(match.group(1)) == 5

        for server in servers:  # refreshed in the background; wait for the next refresh
            await eventually(partial(counted_all_five, server), interval=0.1)
    finally:
        await tear_down([], servers, prefix, deployment)


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
@pytest.mark.gen_test(timeout=60)
async def test_a_client_receives_what_is_sent_on_another_process_right_after_it_connected(deployment):
    url = await base_url(deployment)
    prefix = unique_prefix()
    servers = [ServerProcess(prefixed_url(url, prefix), config=FAST_CONFIG) for _ in range(2)]
    peers: list[Peer] = []
    try:
        await asyncio.gather(*(wait_healthy(server) for server in servers))
        for number in range(15):  # fresh rooms: neither process serves them yet
            room = f"fresh-{number}"
            ann = await Peer.join(servers[0].port, room, "ann", since=None)
            bob = await Peer.join(servers[1].port, room, "bob", since=None)
            peers += [ann, bob]
            await send_json(ann.ws, {"handle": "ann", "message": f"hello {number}"})
            for peer in (ann, bob):
                await peer.wait_until(lambda p: len(p.messages()) == 1, timeout=5)
                assert peer.messages()[0]["message"] == f"hello {number}"
    finally:
        await tear_down(peers, servers, prefix, deployment)


@pytest.mark.gen_test(timeout=60)
async def test_a_process_is_subscribed_to_a_room_while_it_has_a_socket_there_and_not_after():
    await require_redis()
    prefix = unique_prefix()
    server = ServerProcess(prefixed_url(REDIS_URL, prefix), config=FAST_CONFIG)
    channel = RedisKeys(prefix).channel("lobby")
    client = redis.from_url(REDIS_URL, decode_responses=True)

    async def subscribers() -> int:
        return dict(await client.pubsub_shardnumsub(channel))[channel]

    async def unsubscribed() -> bool:
        return await subscribers() == 0

    async def one_socket_open() -> bool:
        text = (await AsyncHTTPClient().fetch(f"{server.base_url}/metrics")).body.decode()
        return float(re.search(r"^rooms_connections (\S+)$", text, re.MULTILINE).group(1)) == 1

    peers: list[Peer] = []
    try:
        await wait_healthy(server)
        assert await subscribers() == 0
        peers = [await Peer.join(server.port, "lobby", name) for name in ("ann", "bob")]
        assert await subscribers() == 1  # one subscriber connection per process, whatever the sockets
        await peers.pop().close()
        await eventually(one_socket_open, message="the process saw bob go")
        # The room is still subscribed once bob has gone: a marker through pub/sub still reaches ann.
        body = json.dumps({"handle": "marker", "message": "still subscribed"})
        await AsyncHTTPClient().fetch(
            f"{server.base_url}/api/rooms/lobby/messages", method="POST", body=body, headers=JSON_TYPE
        )
        await peers[0].wait_until(lambda p: [m["message"] for m in p.messages()] == ["still subscribed"], timeout=5)
        assert await subscribers() == 1
        await peers.pop().close()
        await eventually(unsubscribed)
    finally:
        await client.aclose()
        await tear_down(peers, [server], prefix)


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
@pytest.mark.gen_test(timeout=60)
async def test_an_address_has_one_message_and_new_room_quota_across_processes(deployment):
    """Each process alone would let through 4 messages and 2 new rooms: together they do, no more."""
    url = await base_url(deployment)
    prefix = unique_prefix()
    config = (
        "limits:\n  messages_per_second: 100\n  burst: 100\n"
        "  address_messages_per_second: 0.001\n  address_burst: 4\n  new_rooms_per_hour: 2\n"
    )
    servers = [ServerProcess(prefixed_url(url, prefix), config=config) for _ in range(2)]
    client = AsyncHTTPClient()

    async def post(server: ServerProcess, room: str) -> int:
        response = await client.fetch(
            f"{server.base_url}/api/rooms/{room}/messages",
            method="POST",
            body=json.dumps({"handle": "ann", "message": "hi"}),
            headers={"Content-Type": "application/json"},
            raise_error=False,
        )
        return response.code

    try:
        await asyncio.gather(*(wait_healthy(server) for server in servers))
        assert [await post(servers[0], "first"), await post(servers[1], "second")] == [201, 201]
        # Two rooms made: a third is refused on either process, and the refusal costs no message.
        assert [await post(servers[0], "third"), await post(servers[1], "third")] == [429, 429]
        answers = [await post(servers[n % 2], "first") for n in range(4)]
        assert answers == [201, 201, 429, 429]
        assert len(await history_ids(servers[0].port, "first")) == 3
    finally:
        await tear_down([], servers, prefix, deployment)

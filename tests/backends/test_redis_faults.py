"""The Redis backend when Redis goes away under several processes, goes silent, or comes back empty (the
outage every store shares is in test_store_outage.py).

The shared Redis keeps running: a loopback proxy the test controls is cut between a server and Redis,
and "Redis restarts empty" uses a private redis-server on a port of its own.
"""

from __future__ import annotations

import asyncio
import collections
import re
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient

from backends.redis.backend import RedisBackend
from tests.support.clients import send_json
from tests.support.messages import store
from tests.support.metrics import backend_sample
from tests.support.processes import ServerProcess
from tests.support.recorder import Recorder
from tests.support.redis import (
    FAST_CONFIG,
    REDIS_URL,
    Peer,
    PrivateRedis,
    delete_prefix,
    get_json,
    history_ids,
    prefixed_url,
    redis_address,
    require_redis,
    through_proxy,
    unique_prefix,
    wait_healthy,
)
from tests.support.tcp_proxy import TCPProxy
from tests.support.waiting import eventually


@pytest.mark.gen_test(timeout=60)
async def test_silently_dead_subscriber_is_detected_by_pings_and_replaced_without_losing_messages():
    await require_redis()
    prefix = unique_prefix()
    proxy = await TCPProxy(*redis_address()).start()
    backend = RedisBackend(through_proxy(proxy.port), key_prefix=prefix, ping_interval=0.2)
    writer = RedisBackend(REDIS_URL, key_prefix=prefix)
    try:
        await backend.start()
        await writer.start()
        recorder = Recorder()
        backend.set_delivery_target(recorder)
        await backend.subscribe("lobby")
        first = (await store(writer, "lobby", "ann", "first", None)).message
        await recorder.wait_for(1)

        proxy.stall()  # no error, no reset: the subscriber just stops hearing anything
        second = (await store(writer, "lobby", "ann", "second", None)).message
        third = (await store(writer, "lobby", "ann", "third", None)).message
        await recorder.wait_for(3, timeout=30)
        assert recorder.delivered == [first, second, third]
        assert backend_sample(backend, "rooms_redis_pubsub_sessions_lost_total") >= 1
    finally:
        await backend.close()
        await writer.close()
        await proxy.close()
        await delete_prefix(REDIS_URL, prefix)


class Sender:
    """Sends one message at a time with a fresh client id and waits for its outcome: its own echo
    (acknowledged) or an ``unavailable`` error."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.acked: list[str] = []
        self.refused: list[str] = []

    async def run(self, stop: asyncio.Event) -> None:
        number = 0
        while not stop.is_set():
            client_id = f"{self.peer.name}-{number}"
            number += 1
            mark = len(self.peer.frames)
            await send_json(self.peer.ws, {"handle": self.peer.name, "message": client_id, "client_id": client_id})
            await self.peer.wait_until(lambda peer, c=client_id, m=mark: self._outcome(c, m) is not None)
            if self._outcome(client_id, mark) == "acked":
                self.acked.append(client_id)
                await asyncio.sleep(0.01)
            else:
                self.refused.append(client_id)
                await asyncio.sleep(0.05)

    def _outcome(self, client_id: str, mark: int) -> str | None:
        for frame in self.peer.frames[mark:]:
            if frame.get("type") == "message" and frame.get("client_id") == client_id:
                return "acked"
            if frame.get("type") == "error":
                assert frame["code"] == "unavailable", frame
                return "refused"
        return None


def metric(exposition: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", exposition, re.MULTILINE)
    assert match, name
    return float(match.group(1))


async def all_messages(port: int, room: str) -> list[dict[str, Any]]:
    ids = await history_ids(port, room)
    messages: list[dict[str, Any]] = []
    after = "0"
    while len(messages) < len(ids):
        _, page = await get_json(port, f"/api/rooms/{room}/messages?limit=200&after={after}")
        messages += page["messages"]
        after = messages[-1]["id"]
    return messages


@pytest.mark.gen_test(timeout=180)
async def test_redis_cut_and_restored_under_ten_senders_loses_and_repeats_nothing():
    """Process A reaches Redis through the proxy, process B directly. While A is cut, B's senders go on:
    A's clients must get those from the stream once A is back, in order, exactly once."""
    await require_redis()
    prefix = unique_prefix()
    proxy = await TCPProxy(*redis_address()).start()
    cut_side = ServerProcess(prefixed_url(through_proxy(proxy.port), prefix), config=FAST_CONFIG)
    direct = ServerProcess(prefixed_url(REDIS_URL, prefix), config=FAST_CONFIG)
    peers: list[Peer] = []
    tasks: list[asyncio.Future[None]] = []
    stop = asyncio.Event()
    try:
        await asyncio.gather(wait_healthy(cut_side), wait_healthy(direct))
        for side, server in (("a", cut_side), ("b", direct)):
            for number in range(7):  # 5 senders and 2 listeners on each process
                peers.append(await Peer.join(server.port, "lobby", f"{side}{number}"))
        senders = [Sender(peer) for peer in peers if int(peer.name[1:]) < 5]
        cut_senders = [sender for sender in senders if sender.peer.name.startswith("a")]
        direct_senders = [sender for sender in senders if sender.peer.name.startswith("b")]
        tasks = [asyncio.ensure_future(sender.run(stop)) for sender in senders]

        def acked(group: list[Sender]) -> int:
            return sum(len(sender.acked) for sender in group)

        def state() -> dict[str, object]:
            return {
                sender.peer.name: (len(sender.acked), len(sender.refused), task.done() and repr(task.exception()))
                for sender, task in zip(senders, tasks, strict=True)
            }

        await eventually(lambda: acked(senders) >= 40, timeout=30, message=state)
        proxy.cut()
        direct_before = acked(direct_senders)
        await eventually(
            lambda: all(len(s.refused) >= 3 for s in cut_senders) and acked(direct_senders) >= direct_before + 30,
            timeout=30,
            message=state,
        )
        code, health = await get_json(cut_side.port, "/healthz")
        assert (code, health) == (503, {"status": "unavailable", "backend": "redis"})
        proxy.restore()
        marks = [len(sender.acked) for sender in senders]
        await eventually(
            lambda: all(len(s.acked) >= mark + 5 for s, mark in zip(senders, marks, strict=True)),
            timeout=30,
            message=state,
        )
        stop.set()
        await asyncio.gather(*tasks)

        history = await all_messages(direct.port, "lobby")
        order = [message["id"] for message in history]
        assert await history_ids(cut_side.port, "lobby") == order
        stored = collections.Counter(message.get("client_id") for message in history)
        for sender in senders:
            assert all(stored[client_id] == 1 for client_id in sender.acked), sender.peer.name
            assert all(stored[client_id] <= 1 for client_id in sender.refused), sender.peer.name
        assert all(sender.refused for sender in cut_senders)
        assert not any(sender.refused for sender in direct_senders)
        for peer in peers:
            await peer.wait_until(lambda p: len(p.messages()) >= len(order))
            assert [message["id"] for message in peer.messages()] == order, peer.name
            assert all(frame.get("code") == "unavailable" for frame in peer.frames if frame["type"] != "message")
        # A's clients got B's messages from the cut through A's catch-up from the stream.
        metrics = (await AsyncHTTPClient().fetch(f"{cut_side.base_url}/metrics")).body.decode()
        assert metric(metrics, "rooms_redis_pubsub_sessions_lost_total") >= 1
        assert metric(metrics, "rooms_redis_caught_up_messages_total") >= 30
        assert metric(metrics, "rooms_redis_gaps_total") == 0
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for peer in peers:
            await peer.close()
        cut_side.stop()
        direct.stop()
        await proxy.close()
        await delete_prefix(REDIS_URL, prefix)


@pytest.mark.gen_test(timeout=90)
async def test_redis_restarting_empty_sends_gap_to_clients_and_to_a_client_resuming_from_before():
    redis_server = await PrivateRedis().start()
    server = ServerProcess(redis_server.url, config=FAST_CONFIG)
    peers: list[Peer] = []
    try:
        await wait_healthy(server)
        listener = await Peer.join(server.port, "lobby", "listener")
        sender = await Peer.join(server.port, "lobby", "sender")
        peers += [listener, sender]
        await send_json(sender.ws, {"handle": "ann", "message": "before"})
        await listener.wait_until(lambda p: len(p.messages()) == 1)
        before_id = listener.messages()[0]["id"]

        await redis_server.restart_empty()
        for peer in peers:
            await peer.wait_until(lambda p: {"type": "gap"} in p.frames, timeout=30)
        await wait_healthy(server)
        await send_json(sender.ws, {"handle": "ann", "message": "after"})
        await listener.wait_until(lambda p: len(p.messages()) == 2)
        assert [m["message"] for m in listener.messages()] == ["before", "after"]
        assert listener.frames.index({"type": "gap"}) == 1
        assert await history_ids(server.port, "lobby") == [listener.messages()[1]["id"]]

        late = await Peer.join(server.port, "lobby", "late", since=before_id)
        peers.append(late)
        await late.wait_until(lambda p: len(p.messages()) == 1)
        assert late.frames[0] == {"type": "gap"}
        assert late.messages()[0]["message"] == "after"
    finally:
        for peer in peers:
            await peer.close()
        server.stop()
        redis_server.remove()

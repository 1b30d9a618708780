"""Presence and typing across several server.py processes on one Redis, and a killed process's presence
leaving by itself."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import pytest

from tests.support.clients import send_json
from tests.support.processes import ServerProcess
from tests.support.redis import (
    FAST_CONFIG,
    REDIS_URL,
    Peer,
    delete_prefix,
    prefixed_url,
    require_redis,
    unique_prefix,
    wait_healthy,
)
from tests.support.waiting import eventually

PRESENCE_TTL = 1.5


def last_presence(peer: Peer) -> tuple[int, list[str]] | None:
    frames = [frame for frame in peer.frames if frame.get("type") == "presence"]
    return (frames[-1]["online"], frames[-1]["handles"]) if frames else None


def typing(peer: Peer) -> list[str]:
    return [frame["handle"] for frame in peer.frames if frame.get("type") == "typing"]


@pytest.mark.gen_test(timeout=90)
async def test_presence_and_typing_span_processes_and_a_killed_process_leaves_no_ghosts():
    await require_redis()
    prefix = unique_prefix()
    url = prefixed_url(REDIS_URL, prefix, presence_ttl=PRESENCE_TTL)
    servers = [ServerProcess(url, config=FAST_CONFIG) for _ in range(3)]
    peers: list[Peer] = []
    try:
        await asyncio.gather(*(wait_healthy(server) for server in servers))
        ann = await Peer.join(servers[0].port, "lobby", "ann", since=None, features="presence,typing")
        bob = await Peer.join(servers[1].port, "lobby", "bob", since=None, features="presence,typing")
        ghosts = [await Peer.join(servers[2].port, "lobby", f"g{n}", since=None) for n in range(2)]
        peers = [ann, bob, *ghosts]
        for peer in peers:
            await send_json(peer.ws, {"type": "hello", "handle": peer.name})
        everyone = (4, ["ann", "bob", "g0", "g1"])
        await eventually(lambda: last_presence(ann) == everyone and last_presence(bob) == everyone)
        await send_json(ann.ws, {"type": "typing"})
        await eventually(lambda: typing(bob) == ["ann"])
        assert typing(ann) == []
        # A process that dies says nothing: its share expires, and the others tell their sockets.
        servers[2].process.send_signal(signal.SIGKILL)
        loop = asyncio.get_running_loop()
        killed = loop.time()
        await eventually(lambda: last_presence(ann) == (2, ["ann", "bob"]), timeout=PRESENCE_TTL * 4)
        assert loop.time() - killed <= PRESENCE_TTL * 2
        await eventually(lambda: last_presence(bob) == (2, ["ann", "bob"]))
        # A socket closing is told across processes at once.
        await bob.close()
        await eventually(lambda: last_presence(ann) == (1, ["ann"]), timeout=2)
    finally:
        for peer in peers:
            await peer.close()
        for server in servers:
            server.stop()
        await delete_prefix(REDIS_URL, prefix)


@pytest.mark.gen_test(timeout=60)
async def test_a_process_stopping_cleanly_takes_its_sockets_out_of_presence_at_once():
    await require_redis()
    prefix = unique_prefix()
    url = prefixed_url(REDIS_URL, prefix)  # the default ttl (30 s): only a clean stop explains a quick leave
    servers = [ServerProcess(url, config=FAST_CONFIG) for _ in range(2)]
    peers: list[Any] = []
    try:
        await asyncio.gather(*(wait_healthy(server) for server in servers))
        ann = await Peer.join(servers[0].port, "lobby", "ann", since=None, features="presence")
        leaving = [await Peer.join(servers[1].port, "lobby", f"l{n}", since=None) for n in range(3)]
        peers = [ann, *leaving]
        await eventually(lambda: last_presence(ann) == (4, []))
        servers[1].stop()
        await eventually(lambda: last_presence(ann) == (1, []), timeout=5)
    finally:
        for peer in peers:
            await peer.close()
        for server in servers:
            server.stop()
        await delete_prefix(REDIS_URL, prefix)

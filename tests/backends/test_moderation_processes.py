"""Moderation across real server.py processes: on one Redis, what a moderator does through one process
holds on the others (a deletion reaches their sockets and history, a ban closes their sockets, a lock
refuses their posts); on SQLite, bans and locks outlive a restart."""

from __future__ import annotations

import asyncio
import json

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from backends.redis.backend import RedisBackend
from tests.support.clients import send_json, wait_closed
from tests.support.processes import ServerProcess
from tests.support.redis import (
    FAST_CONFIG,
    REDIS_URL,
    Peer,
    delete_prefix,
    history_ids,
    prefixed_url,
    redis_address,
    require_redis,
    through_proxy,
    unique_prefix,
    wait_healthy,
)
from tests.support.tcp_proxy import TCPProxy
from tests.support.tokens import MODERATOR_TOKEN
from tests.support.waiting import eventually

CONFIG = FAST_CONFIG + f"moderation:\n  tokens: [{MODERATOR_TOKEN}]\n"
BANNED = "203.0.113.77"


async def call(port: int, method: str, path: str, payload=None, token: str | None = MODERATOR_TOKEN, address=None):
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if address is not None:
        headers["X-Forwarded-For"] = address
    response = await AsyncHTTPClient().fetch(
        f"http://127.0.0.1:{port}{path}",
        method=method,
        headers=headers,
        body=None if payload is None else json.dumps(payload),
        raise_error=False,
        allow_nonstandard_methods=True,
        request_timeout=10,
    )
    return response.code, json.loads(response.body) if response.body else None


async def say(port: int, room: str, handle: str, text: str, address=None) -> int:
    payload = {"handle": handle, "message": text}
    return (await call(port, "POST", f"/api/rooms/{room}/messages", payload, None, address))[0]


async def handshake(port: int, room: str, address: str) -> int:
    request = HTTPRequest(f"ws://127.0.0.1:{port}/chat/{room}/", headers={"X-Forwarded-For": address})
    try:
        ws = await websocket_connect(request)
    except HTTPClientError as exc:
        return exc.code
    ws.close()
    return 101


@pytest.mark.gen_test(timeout=90)
async def test_on_redis_a_moderator_on_one_process_reaches_the_sockets_and_history_of_another():
    await require_redis()
    prefix = unique_prefix()
    servers = [ServerProcess(prefixed_url(REDIS_URL, prefix), config=CONFIG) for _ in range(2)]
    a, b = servers
    peers: list[Peer] = []
    banned = None
    try:
        await asyncio.gather(*(wait_healthy(server) for server in servers))
        watcher = await Peer.join(b.port, "lobby", "watcher", since=None, features="deletes")
        banned = await websocket_connect(
            HTTPRequest(f"ws://127.0.0.1:{b.port}/chat/lobby/", headers={"X-Forwarded-For": BANNED})
        )
        peers = [watcher]
        await send_json(watcher.ws, {"handle": "troll", "message": "delete me"})
        await send_json(watcher.ws, {"handle": "ann", "message": "keep me"})
        await watcher.wait_until(lambda peer: len(peer.messages()) == 2)
        doomed, kept = (message["id"] for message in watcher.messages())
        assert (await call(a.port, "DELETE", f"/api/rooms/lobby/messages/{doomed}"))[0] == 204
        # The deletion has its position in the room's log, as on every store.
        await watcher.wait_until(
            lambda peer: any(frame == {"type": "delete", "id": doomed, "at": frame.get("at")} for frame in peer.frames)
        )
        [deletion] = [frame for frame in watcher.frames if frame.get("type") == "delete"]
        assert [int(part) for part in deletion["at"].split("-")] > [int(part) for part in kept.split("-")]
        assert await history_ids(b.port, "lobby") == [kept]
        # A ban made on A closes the banned address's socket on B, and B refuses it from then on.
        code, made = await call(a.port, "POST", "/api/bans", {"address": BANNED, "room": "lobby"})
        assert code == 201, made
        assert await wait_closed(banned, timeout=10) == 1008
        assert await handshake(b.port, "lobby", BANNED) == 403
        assert await say(b.port, "lobby", "ann", "from the banned address", BANNED) == 403
        # Handle bans and locks made on A hold on B; lifted and unlocked on A, B lets them through again.
        code, by_handle = await call(a.port, "POST", "/api/bans", {"handle": "spammer"})
        assert code == 201
        await eventually(lambda: _is(say(b.port, "elsewhere", "Spammer", "refused?"), 403))
        assert (await call(a.port, "PATCH", "/api/rooms/quiet", {"locked": True}))[0] == 200
        await eventually(lambda: _is(say(b.port, "quiet", "ann", "refused?"), 403))
        assert (await call(b.port, "GET", "/api/rooms/quiet"))[1] == {"room": "quiet", "locked": True}
        assert (await call(a.port, "DELETE", f"/api/bans/{by_handle['id']}"))[0] == 204
        assert (await call(a.port, "PATCH", "/api/rooms/quiet", {"locked": False}))[0] == 200
        await eventually(lambda: _is(say(b.port, "elsewhere", "spammer", "back"), 201))
        await eventually(lambda: _is(say(b.port, "quiet", "ann", "open again"), 201))
        listed = (await call(b.port, "GET", "/api/bans"))[1]["bans"]
        assert [ban["id"] for ban in listed] == [made["id"]]
    finally:
        for peer in peers:
            await peer.close()
        if banned is not None:
            banned.close()
        for server in servers:
            server.stop()
        await delete_prefix(REDIS_URL, prefix)


@pytest.mark.gen_test(timeout=90)
async def test_on_redis_a_ban_made_while_a_process_was_cut_off_holds_there_once_it_is_back():
    await require_redis()
    prefix = unique_prefix()
    proxy = await TCPProxy(*redis_address()).start()
    server = ServerProcess(prefixed_url(through_proxy(proxy.port), prefix, ping_interval=0.2), config=CONFIG)
    elsewhere = RedisBackend(REDIS_URL, key_prefix=prefix)  # another process, as far as the store can tell
    ws = None
    try:
        await wait_healthy(server)
        await elsewhere.start()
        ws = await websocket_connect(
            HTTPRequest(f"ws://127.0.0.1:{server.port}/chat/lobby/", headers={"X-Forwarded-For": BANNED})
        )
        proxy.cut()  # the notice of the ban goes out while this process hears nothing
        await elsewhere.add_ban(None, BANNED, None, None, "made elsewhere")
        await elsewhere.set_locked("quiet", True)
        await asyncio.sleep(0.5)
        proxy.restore()
        assert await wait_closed(ws, timeout=20) == 1008
        assert await handshake(server.port, "lobby", BANNED) == 403
        await eventually(lambda: _is(say(server.port, "quiet", "ann", "refused?"), 403))
    finally:
        if ws is not None:
            ws.close()
        server.stop()
        await elsewhere.close()
        await proxy.close()
        await delete_prefix(REDIS_URL, prefix)


async def _is(answer, expected: int) -> bool:
    return await answer == expected


@pytest.mark.gen_test(timeout=90)
async def test_on_sqlite_bans_and_locks_outlive_a_restart(tmp_path):
    url = f"sqlite:///{tmp_path / 'rooms.db'}"
    first = ServerProcess(url, config=CONFIG)
    try:
        await wait_healthy(first)
        assert (await call(first.port, "POST", "/api/bans", {"handle": "spammer", "reason": "spam"}))[0] == 201
        assert (await call(first.port, "POST", "/api/bans", {"address": BANNED, "room": "lobby"}))[0] == 201
        assert (await call(first.port, "PATCH", "/api/rooms/quiet", {"locked": True}))[0] == 200
        before = (await call(first.port, "GET", "/api/bans"))[1]["bans"]
    finally:
        assert first.stop() == 0
    second = ServerProcess(url, config=CONFIG)
    try:
        await wait_healthy(second)
        assert (await call(second.port, "GET", "/api/bans"))[1]["bans"] == before
        # In force from the first request: read at start, not on a notice.
        assert await say(second.port, "lobby", "spammer", "hello again") == 403
        assert await say(second.port, "quiet", "ann", "hello?") == 403
        assert await handshake(second.port, "lobby", BANNED) == 403
        assert await say(second.port, "lobby", "ann", "hello") == 201
        assert (await call(second.port, "GET", "/api/rooms/quiet"))[1]["locked"] is True
    finally:
        second.stop()

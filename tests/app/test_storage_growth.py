"""Storage grows with messages and moderators' actions only: reading any number of labels, every way a
client can, stores nothing, what the process keeps per room or per address goes when its sockets go, and
bans that ran out do not stay."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from tornado.httpclient import HTTPClientError

from backends.memory import MemoryBackend
from backends.redis.backend import RedisBackend
from backends.sql.backend import SQLBackend
from tests.support.clients import connect, receive_json, send_json
from tests.support.metrics import app_sample
from tests.support.waiting import eventually

LABELS = 40


@pytest.fixture
def app(app_on_each_backend):
    return app_on_each_backend


async def rooms_in_store(backend) -> int:
    """Rooms the store holds, whether or not they have messages. (No public read counts those without any,
    nor bans run out: both are read inside each backend.)"""
    if isinstance(backend, MemoryBackend):
        return len(backend._rooms)
    if isinstance(backend, SQLBackend):
        return await backend._read("count", lambda: backend._database.tables.room.select().count())
    assert isinstance(backend, RedisBackend)  # read through its own client: on Sentinel, that is the master
    return len([key async for key in backend._redis.scan_iter(f"{backend._keys.prefix}*") if ":quota:" not in key])


@pytest.mark.gen_test(timeout=60)
async def test_reading_labels_every_way_stores_nothing_and_sockets_leave_nothing_behind(
    backend_name, http_server, http_port, http_client, app, app_backend
):
    backend = app_backend
    before = await rooms_in_store(backend)
    base = f"http://127.0.0.1:{http_port}"
    labels = [f"v-{uuid.uuid4().hex[:10]}" for _ in range(LABELS)]
    for room in labels:
        for path in (
            f"/{room}/",
            f"/api/rooms/{room}/messages",
            f"/chat/{room}/",
            f"/api/rooms/{room}/messages?after=0",
            f"/api/rooms/{room}/search?q=hello",
        ):
            await http_client.fetch(base + path, raise_error=False)
        with pytest.raises(HTTPClientError):
            await connect(http_port, room, headers={"Origin": "http://elsewhere.example"})
        (await connect(http_port, room, since="0")).close()
    await eventually(
        lambda: app_sample(app, "rooms_active_rooms") == 0, message="rooms still held after their sockets closed"
    )
    # A socket's presence is kept while it is open (on Redis, a key per room): gone once it has left.
    await eventually(
        lambda: not any(app.hub.presence.has_room(room) for room in labels),
        message="presence still kept after the sockets left",
    )
    assert await rooms_in_store(backend) == before
    assert app.hub.rates.addresses_with_sockets() == 0

    ws = await connect(http_port, "spoken")
    await send_json(ws, {"handle": "ann", "message": "the first message writes the room"})
    await receive_json(ws)
    ws.close()
    assert await rooms_in_store(backend) > before


async def bans_in_store(backend) -> int:
    """Bans the store holds, in force or not."""
    if isinstance(backend, MemoryBackend):
        return len(backend._bans)
    if isinstance(backend, SQLBackend):
        return await backend._read("count", lambda: backend._database.tables.ban.select().count())
    assert isinstance(backend, RedisBackend)
    return int(await backend._redis.hlen(backend._keys.bans))


@pytest.mark.gen_test(timeout=30)
async def test_expired_bans_leave_storage_at_the_next_read_or_ban(make_backend):
    backend = await make_backend()
    lasting = await backend.add_ban("ann", None, None, None, "")
    for n in range(3):
        await backend.add_ban(f"short{n}", None, "lobby", 0.2, "")
    assert await bans_in_store(backend) == 4
    await asyncio.sleep(0.3)
    assert await backend.bans() == [lasting]
    assert await bans_in_store(backend) == 1
    await backend.add_ban(None, "203.0.113.5", None, 0.2, "")
    await asyncio.sleep(0.3)
    newer = await backend.add_ban("bob", None, None, None, "")
    assert await bans_in_store(backend) == 2  # the one that ran out went as the next was made
    assert await backend.bans() == [lasting, newer]

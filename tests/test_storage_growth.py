"""Storage grows with messages only: reading any number of labels, every way a client can, stores nothing,
and what the process keeps per room or per address goes when its sockets go."""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as redis
from tornado.httpclient import HTTPClientError

from backends.memory import MemoryBackend
from backends.redis_streams import RedisBackend
from backends.sql import SQLBackend
from tests.clients import connect, receive_json, send_json
from tests.factories.redis import REDIS_URL
from tests.waiting import eventually

LABELS = 40


@pytest.fixture
def app(app_on_each_backend):
    return app_on_each_backend


async def rooms_in_store(backend) -> int:
    """Rooms the store holds, whether or not they have messages."""
    if isinstance(backend, MemoryBackend):
        return len(backend._rooms)
    if isinstance(backend, SQLBackend):
        return await backend._read("count", lambda: backend._store._room.select().count())
    assert isinstance(backend, RedisBackend)
    client = redis.from_url(REDIS_URL, decode_responses=True)
    try:
        return len([key async for key in client.scan_iter(f"{backend._keys.prefix}*") if ":quota:" not in key])
    finally:
        await client.aclose()


@pytest.mark.gen_test(timeout=60)
async def test_reading_labels_every_way_stores_nothing_and_sockets_leave_nothing_behind(
    backend_name, http_server, http_port, http_client, app
):
    backend = app.hub.fanout._backend
    before = await rooms_in_store(backend)
    base = f"http://127.0.0.1:{http_port}"
    for _ in range(LABELS):
        room = f"v-{uuid.uuid4().hex[:10]}"
        for path in (
            f"/{room}/",
            f"/api/rooms/{room}/messages",
            f"/chat/{room}/",
            f"/api/rooms/{room}/messages?after=0",
        ):
            await http_client.fetch(base + path, raise_error=False)
        with pytest.raises(HTTPClientError):
            await connect(http_port, room, headers={"Origin": "http://elsewhere.example"})
        (await connect(http_port, room, since="0")).close()
    await eventually(lambda: not app.hub.fanout._rooms, message="rooms still held after their sockets closed")
    assert await rooms_in_store(backend) == before
    assert app.hub.rates._connections == {}

    ws = await connect(http_port, "spoken")
    await send_json(ws, {"handle": "ann", "message": "the first message writes the room"})
    await receive_json(ws)
    ws.close()
    assert await rooms_in_store(backend) > before

"""Redis backend behaviour beyond the shared contract: its URL options and key prefix, its storage script,
client ids and address quotas across processes, presence, and keeping deployments apart."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import redis.asyncio as redis

from backends import url_scheme
from backends.base import AddressQuota, HistoryPage, NewMessage, RoomPresence, utc_timestamp
from backends.errors import BackendConfigError, QuotaExceeded
from backends.redis.backend import RedisBackend
from backends.redis.keys import RedisKeys
from backends.redis.scripts import STORE
from tests.support.factories.redis import RedisFactory
from tests.support.messages import store
from tests.support.recorder import Recorder
from tests.support.redis import REDIS_URL, delete_prefix, redis_address, require_redis, through_proxy, unique_prefix
from tests.support.tcp_proxy import TCPProxy
from tests.support.waiting import eventually


@pytest.mark.parametrize(
    ("query", "named"),
    [("dedup_seconds=soon", "dedup_seconds"), ("ping_interval=0", "ping_interval"), ("key_prefix=", "key_prefix"),
     ("no_such_option=1", "no_such_option")],
)  # fmt: skip
def test_bad_url_options_are_config_errors_naming_the_option(query, named):
    with pytest.raises(BackendConfigError, match=named):
        RedisBackend(f"{REDIS_URL}?{query}")


def test_a_cluster_url_is_a_backend_url_of_its_own_scheme():
    assert url_scheme("redis+cluster://h1:7000,h2:7001/?key_prefix=r:") == "redis+cluster"


@pytest.mark.gen_test(timeout=30)
async def test_key_prefix_in_the_url_places_every_key_under_it():
    await require_redis()
    prefix = unique_prefix()
    backend = RedisBackend(f"{REDIS_URL}?key_prefix={prefix}&socket_timeout=3")
    client = redis.from_url(REDIS_URL, decode_responses=True)
    try:
        await backend.start()
        await store(backend, "lobby", "ann", "hi", "c-1")
        keys = {key async for key in client.scan_iter(match=f"{prefix}*")}
        assert f"{prefix}{{lobby}}:stream" in keys and f"{prefix}{{lobby}}:cid:c-1" in keys
    finally:
        await backend.close()
        await client.aclose()
        await delete_prefix(REDIS_URL, prefix)


@pytest.mark.gen_test(timeout=30)
async def test_store_script_retried_with_the_same_attempt_stores_once_and_is_not_a_duplicate():
    """What a redis-py retry does when the first reply was lost: the same call, the same attempt token."""
    await require_redis()
    prefix = unique_prefix()
    keys = RedisKeys(prefix)
    client = redis.from_url(REDIS_URL, decode_responses=True)
    script = client.register_script(STORE.text)
    try:
        for dedup_key, client_id in ((keys.attempt("lobby", "a1"), ""), (keys.client_id("lobby", "c-1"), "c-1")):
            call = {
                "keys": [
                    *(keys.stream("lobby"), dedup_key, keys.deleted("lobby"), keys.room_epoch("lobby")),
                    *(keys.pruned("lobby"), keys.changes("lobby"), keys.current("lobby")),
                ],
                "args": [
                    *("ann", "hi", "2026-01-01T00:00:00+00:00", client_id, "a1", 60, 0, 1, keys.channel("lobby")),
                    *("", "", "", "", ""),
                ],
            }
            first = await script(**call)
            again = await script(**call)
            assert first[0] == 0 and again[0] == 2 and again[1] == first[1]
        resend = await script(keys=call["keys"], args=[*call["args"][:4], "a2", *call["args"][5:]])
        assert resend[0] == 1 and resend[1] == first[1]  # another call with the same client id: a duplicate
        assert await client.xlen(keys.stream("lobby")) == 2
        assert await client.get(keys.room_epoch("lobby")) == "a1"  # set by the store that made the stream
    finally:
        await client.aclose()
        await delete_prefix(REDIS_URL, prefix)


@pytest.mark.gen_test(timeout=30)
async def test_deployments_on_different_database_numbers_do_not_hear_each_other():
    """Pub/sub channels are global to a Redis server; the channel names carry the database number."""
    await require_redis()
    prefix = unique_prefix()
    urls = [urlsplit(REDIS_URL)._replace(path=f"/{db}").geturl() for db in (14, 15)]
    backends = [RedisBackend(url, key_prefix=prefix) for url in urls]
    recorders = [Recorder(), Recorder()]
    try:
        for backend, recorder in zip(backends, recorders, strict=True):
            await backend.start()
            backend.set_delivery_target(recorder)
            await backend.subscribe("lobby")
        stored = (await store(backends[0], "lobby", "ann", "only in 14", None)).message
        await recorders[0].wait_for(1)
        # Redis sends a subscriber what is published in the order published: 14's message, had it reached
        # 15's subscriber, would come before this marker.
        marker = (await store(backends[1], "lobby", "ann", "only in 15", None)).message
        await recorders[1].wait_for(1)
        assert recorders[0].delivered == [stored] and recorders[1].delivered == [marker]
    finally:
        for backend in backends:
            await backend.close()
        for url in urls:
            await delete_prefix(url, prefix)


@pytest.mark.gen_test(timeout=30)
async def test_a_client_id_is_stored_once_whichever_process_gets_it_and_is_forgotten_after_dedup_seconds():
    factory = RedisFactory()  # two backends on one prefix: two processes of one deployment
    client = redis.from_url(REDIS_URL, decode_responses=True)
    first = second = None
    try:
        first = await factory.create(dedup_seconds=600)
        second = await factory.create(dedup_seconds=600)
        stored = await store(first, "lobby", "ann", "hi", "c-1")
        resent = await store(second, "lobby", "ann", "hi", "c-1")
        assert not stored.duplicate and resent.duplicate and resent.message == stored.message
        assert 0 < await client.ttl(RedisKeys(factory.prefix).client_id("lobby", "c-1")) <= 600
        assert [m.id for m in (await second.history("lobby", 10)).messages] == [stored.message.id]
    finally:
        for backend in (first, second):
            if backend is not None:
                await backend.close()
        await client.aclose()
        await factory.dispose()


@pytest.mark.gen_test(timeout=30)
async def test_history_around_the_largest_possible_id_is_empty_after_it_and_everything_before_it():
    factory = RedisFactory()
    backend = await factory.create()
    largest = f"{2**64 - 1}-{2**64 - 1}"
    try:
        stored = await store(backend, "lobby", "ann", "hi", None)
        assert await backend.history("lobby", 10, after=largest) == HistoryPage([], False)
        assert [m.id for m in (await backend.history("lobby", 10, before=largest)).messages] == [stored.message.id]
    finally:
        await backend.close()
        await factory.dispose()


@pytest.mark.gen_test(timeout=30)
async def test_presence_combines_every_process_and_a_process_that_stops_refreshing_leaves_by_its_ttl():
    await require_redis()
    prefix = unique_prefix()
    proxy = await TCPProxy(*redis_address()).start()
    first, third = (RedisBackend(f"{REDIS_URL}?presence_ttl=1.5", key_prefix=prefix) for _ in range(2))
    second = RedisBackend(f"{through_proxy(proxy.port)}?presence_ttl=1.5", key_prefix=prefix)
    recorders = [Recorder(), Recorder(), Recorder()]
    client = redis.from_url(REDIS_URL, decode_responses=True)
    try:
        for backend, recorder in zip((first, second, third), recorders, strict=True):
            await backend.start()
            backend.set_delivery_target(recorder)
            await backend.subscribe("lobby")
        await first.presence("lobby", RoomPresence(2, ("ann", "bob")), changed=True)
        combined = await second.presence("lobby", RoomPresence(1, ("bob", "cat")), changed=True)
        assert combined == RoomPresence(3, ("ann", "bob", "cat"))
        # Each is told of the others' changes, never of its own.
        await eventually(lambda: [len(recorder.presence_changes) for recorder in recorders] == [1, 1, 2])
        first.relay("lobby", '{"type":"typing","handle":"ann"}')
        await eventually(lambda: recorders[1].signals and recorders[2].signals)
        assert recorders[1].signals == [("lobby", '{"type":"typing","handle":"ann"}')] and recorders[0].signals == []
        # The second is gone without a word (a process killed, or cut off): its share outlives it by the ttl,
        # then the next refresh drops it and tells the room.
        proxy.cut()
        await eventually(lambda: len(recorders[0].presence_changes) >= 2, timeout=5)
        assert await first.presence("lobby", RoomPresence(2, ("ann", "bob")), changed=False) == RoomPresence(
            2, ("ann", "bob")
        )
        # The last share gone, nothing is kept for the room.
        await first.presence("lobby", RoomPresence(0, ()), changed=True)
        await third.presence("lobby", RoomPresence(0, ()), changed=True)
        assert not await client.exists(RedisKeys(prefix).presence("lobby"))
    finally:
        for backend in (first, second, third):
            await backend.close()
        await proxy.close()
        await client.aclose()
        await delete_prefix(REDIS_URL, prefix)


@pytest.mark.gen_test(timeout=30)
async def test_a_closing_process_takes_its_presence_with_it():
    await require_redis()
    prefix = unique_prefix()
    first, second = RedisBackend(REDIS_URL, key_prefix=prefix), RedisBackend(REDIS_URL, key_prefix=prefix)
    try:
        for backend in (first, second):
            await backend.start()
        await first.presence("lobby", RoomPresence(4, ("ann",)), changed=True)
        await first.close()
        assert await second.presence("lobby", RoomPresence(1, ()), changed=True) == RoomPresence(1, ())
    finally:
        for backend in (first, second):
            await backend.close()
        await delete_prefix(REDIS_URL, prefix)


def test_a_key_prefix_with_braces_is_refused_as_it_would_break_the_hash_tags():
    with pytest.raises(BackendConfigError, match="braces"):
        RedisBackend(f"{REDIS_URL}?key_prefix=my{{app}}:")


@pytest.mark.gen_test(timeout=30)
async def test_an_address_is_charged_only_for_messages_stored_and_its_resends_are_always_answered():
    await require_redis()
    factory = RedisFactory()
    backend = await factory.create(quota=AddressQuota(new_rooms_per_hour=0, messages_per_second=0.001, burst=2))
    address = "203.0.113.9"

    async def send(client_id: str, address: str = address) -> bool:
        result = await backend.store(NewMessage("lobby", "ann", client_id, client_id, utc_timestamp(), address))
        return result.duplicate

    try:
        assert not await send("c1")
        for _ in range(3):
            assert await send("c1")  # a resend costs nothing
        assert not await send("c2")  # the second of two
        with pytest.raises(QuotaExceeded):
            await send("c3")
        assert await send("c1")  # over the quota, a resend is still answered
        assert not await send("c3", "203.0.113.10")  # another address has its own
        assert [m.message for m in (await backend.history("lobby", 10)).messages] == ["c1", "c2", "c3"]
    finally:
        await backend.close()
        await factory.dispose()

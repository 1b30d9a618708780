"""Redis backend behaviour beyond the shared contract: its URL options, its storage script, and keeping
deployments apart."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

import pytest
import redis.asyncio as redis

from backends import url_scheme
from backends.base import AddressQuota, HistoryPage, NewMessage, RoomPresence, StoredMessage, utc_timestamp
from backends.errors import BackendConfigError, MessageDeleted, QuotaExceeded
from backends.redis.backend import RedisBackend
from backends.redis.channel import published_message
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
    url = f"{REDIS_URL}?presence_ttl=1.5"
    first, second, third = (RedisBackend(url, key_prefix=prefix) for _ in range(3))
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
        # The second stops refreshing without a word (a process killed): its share outlives it by the ttl,
        # then the next refresh drops it and tells the room.
        await second._presence.stop_refreshing()
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


async def listening(factory: RedisFactory, room: str, **options) -> tuple[RedisBackend, Recorder]:
    backend = await factory.create(**options)
    recorder = Recorder()
    backend.set_delivery_target(recorder)
    await backend.subscribe(room)
    return backend, recorder


@pytest.mark.gen_test(timeout=30)
async def test_a_deletion_on_one_process_reaches_every_process_and_its_history():
    factory = RedisFactory()  # two backends on one prefix: two processes of one deployment
    made: list[RedisBackend] = []
    try:
        first, first_heard = await listening(factory, "lobby")
        second, second_heard = await listening(factory, "lobby")
        made += [first, second]
        stored = [(await store(first, "lobby", "ann", f"m{n}", f"c-{n}")).message for n in range(3)]
        await second_heard.wait_for(3)
        assert await first.delete_message("lobby", stored[1].id)
        for recorder in (first_heard, second_heard):
            await eventually(lambda recorder=recorder: recorder.deletions == [("lobby", stored[1].id)])
        assert (await second.history("lobby", 10)).messages == [stored[0], stored[2]]
        assert not await second.delete_message("lobby", stored[1].id)
        with pytest.raises(MessageDeleted):  # whichever process the resend reaches
            await store(second, "lobby", "ann", "m1", "c-1")
    finally:
        for backend in made:
            await backend.close()
        await factory.dispose()


@pytest.mark.gen_test(timeout=30)
async def test_a_ban_or_lock_on_one_process_tells_every_process():
    factory = RedisFactory()
    made: list[RedisBackend] = []
    try:
        first, first_heard = await listening(factory, "lobby")
        second, second_heard = await listening(factory, "elsewhere")  # told whatever room it listens to
        made += [first, second]
        ban = await first.add_ban(None, "203.0.113.9", "lobby", None, "flooding")
        await eventually(lambda: (first_heard.moderation_changes, second_heard.moderation_changes) == (1, 1))
        assert await second.bans() == [ban]
        await second.set_locked("lobby", True)
        await eventually(lambda: (first_heard.moderation_changes, second_heard.moderation_changes) == (2, 2))
        assert await first.locked_rooms() == {"lobby"}
        assert await second.lift_ban(ban.id)
        await eventually(lambda: (first_heard.moderation_changes, second_heard.moderation_changes) == (3, 3))
        assert await first.bans() == []
    finally:
        for backend in made:
            await backend.close()
        await factory.dispose()


@pytest.mark.gen_test(timeout=60)
async def test_a_process_away_from_pub_sub_hears_what_it_missed_of_deletions_and_moderation():
    """While its connections are cut, another process deletes every message it had delivered (no gap when
    it is back, though the stream now starts past them: they were deleted, not pruned) and bans someone.
    Back, it is told of each deletion once, and to read moderation again."""
    await require_redis()
    factory = RedisFactory()
    proxy = await TCPProxy(*redis_address()).start()
    away = RedisBackend(through_proxy(proxy.port), key_prefix=factory.prefix, ping_interval=0.2)
    recorder = Recorder()
    made: list[RedisBackend] = [away]
    try:
        await away.start()
        away.set_delivery_target(recorder)
        await away.subscribe("lobby")
        writer = await factory.create()
        made.append(writer)
        stored = [(await store(writer, "lobby", "ann", f"m{n}", None)).message for n in range(3)]
        await recorder.wait_for(3)
        proxy.cut()
        await eventually(lambda: not away._subscriber.is_live, timeout=10)
        for message in stored:
            assert await writer.delete_message("lobby", message.id)
        await writer.add_ban("ann", None, None, None, "")
        later = (await store(writer, "lobby", "ann", "while away", None)).message
        proxy.restore()
        missed = [("lobby", message.id) for message in stored]
        await eventually(lambda: recorder.deletions == missed, timeout=20)
        await eventually(lambda: recorder.moderation_changes >= 1)
        await recorder.wait_for(4)
        assert recorder.delivered == [*stored, later] and recorder.gaps == []
        # A deletion is told once: the next one comes live, and only it.
        assert await writer.delete_message("lobby", later.id)
        await eventually(lambda: len(recorder.deletions) == 4)
        # A message stored now is the marker: it comes on the room's channel after the deletion's notice, so a
        # second notice of the deletion would have come before it.
        await store(writer, "lobby", "ann", "marker", None)
        await recorder.wait_for(5)
        assert recorder.deletions == [*missed, ("lobby", later.id)]
    finally:
        for backend in made:
            await backend.close()
        await proxy.close()
        await factory.dispose()


@pytest.mark.gen_test(timeout=30)
async def test_expired_bans_are_purged_from_redis_and_a_removed_room_takes_its_deletions_along():
    factory = RedisFactory()
    client = redis.from_url(REDIS_URL, decode_responses=True)
    backend = await factory.create()
    keys = RedisKeys(factory.prefix)
    try:
        await backend.add_ban("ann", None, None, 0.2, "")
        [message] = [(await store(backend, "lobby", "ann", "hi", None)).message]
        assert await backend.delete_message("lobby", message.id)
        assert await client.zcard(keys.deleted("lobby")) == 1
        await asyncio.sleep(0.3)
        assert await backend.bans() == []
        assert not await client.exists(keys.bans)
        assert await backend.expire_rooms(utc_timestamp()) == 1
        assert not await client.exists(keys.deleted("lobby"))
    finally:
        await backend.close()
        await client.aclose()
        await factory.dispose()


@pytest.mark.gen_test(timeout=60)
async def test_user_and_moderator_reach_another_process_live_and_after_it_was_away():
    """Live, a message comes to the other process as the store script publishes it; after a cut, as its
    stream entry, read in the catch-up: who sent it comes along both ways."""
    await require_redis()
    factory = RedisFactory()
    proxy = await TCPProxy(*redis_address()).start()
    away = RedisBackend(through_proxy(proxy.port), key_prefix=factory.prefix, ping_interval=0.2)
    recorder = Recorder()
    made: list[RedisBackend] = [away]
    senders = [(None, False), ("user-7 ü", False), ("mod-1", True), (None, True)]
    try:
        await away.start()
        away.set_delivery_target(recorder)
        await away.subscribe("lobby")
        writer = await factory.create()
        made.append(writer)
        live = [(await store(writer, "lobby", "ann", "live", None, *sender)).message for sender in senders]
        await recorder.wait_for(4)
        proxy.cut()
        await eventually(lambda: not away._subscriber.is_live, timeout=10)
        missed = [(await store(writer, "lobby", "ann", "missed", None, *sender)).message for sender in senders]
        proxy.restore()
        await recorder.wait_for(8, timeout=20)
        assert recorder.delivered == [*live, *missed] and recorder.gaps == []
        for message in recorder.delivered:
            assert type(message.moderator) is bool
        assert [(m.user, m.moderator) for m in recorder.delivered] == senders * 2
    finally:
        for backend in made:
            await backend.close()
        await proxy.close()
        await factory.dispose()


@pytest.mark.gen_test(timeout=30)
async def test_entries_hold_user_and_moderator_only_when_set_and_those_of_earlier_releases_still_read():
    factory = RedisFactory()
    client = redis.from_url(REDIS_URL, decode_responses=True)
    keys = RedisKeys(factory.prefix)
    backend = await factory.create()
    try:
        recorder = Recorder()
        backend.set_delivery_target(recorder)
        await backend.subscribe("lobby")
        plain = (await store(backend, "lobby", "ann", "plain", "c-1")).message
        signed = (await store(backend, "lobby", "bob", "signed", None, "user-7", True)).message
        entries = dict(await client.xrange(keys.stream("lobby")))
        assert set(entries[plain.id]) == {"h", "m", "t", "c"}
        assert (entries[signed.id]["u"], entries[signed.id]["mod"]) == ("user-7", "1")
        # An earlier release's process stores as its script did: no user or moderator in the entry, a JSON
        # array of five published, and the client id's dedup key.
        stamp = utc_timestamp()
        old_id = await client.xadd(keys.stream("lobby"), {"h": "cy", "m": "old", "t": stamp, "c": "c-old"})
        await client.set(keys.client_id("lobby", "c-old"), f"{old_id} its-attempt")
        await client.spublish(keys.channel("lobby"), json.dumps([old_id, "cy", "old", stamp, "c-old"]))
        await recorder.wait_for(3)
        old = StoredMessage(old_id, "lobby", "cy", "old", stamp, "c-old")
        assert recorder.delivered == [plain, signed, old]
        assert (await backend.history("lobby", 10)).messages == [plain, signed, old]
        assert (await backend.replay("lobby", signed.id, 10)).page.messages == [old]
        resent = await store(backend, "lobby", "cy", "old", "c-old", "user-9", True)
        assert resent.duplicate and resent.message == old and (old.user, old.moderator) == (None, False)
    finally:
        await backend.close()
        await client.aclose()
        await factory.dispose()


@pytest.mark.parametrize(
    ("published", "sender"),
    [
        (["1-0", "ann", "hi", "2026-01-01T00:00:00+00:00", ""], (None, None, False)),  # an earlier release's
        (["1-0", "ann", "hi", "2026-01-01T00:00:00+00:00", "c-1", "user-7", False], ("c-1", "user-7", False)),
        (["1-0", "ann", "hi", "2026-01-01T00:00:00+00:00", "", "", True], (None, None, True)),
        (["1-0", "ann", "hi", "2026-01-01T00:00:00+00:00", "", "user-7", True], (None, "user-7", True)),
        (["1-0", "ann", "hi", "2026-01-01T00:00:00+00:00", "", "", False, "e1"], (None, None, False)),
    ],
)
def test_a_published_message_is_read_with_or_without_who_sent_it(published, sender):
    message, epoch = published_message("lobby", json.dumps(published))
    assert (message.client_id, message.user, message.moderator) == sender
    assert epoch == ("e1" if len(published) == 8 else None)  # only the message that made the stream has it
    assert (message.id, message.handle, message.message) == ("1-0", "ann", "hi")


@pytest.mark.gen_test(timeout=30)
async def test_keys_of_the_earlier_layout_are_renamed_once_at_start_and_keep_their_expiry():
    await require_redis()
    prefix = unique_prefix()
    client = redis.from_url(REDIS_URL, decode_responses=True)
    stamp = utc_timestamp()
    try:
        # What a deployment of the earlier layout holds: a room with a message (one deleted), its client
        # id, a ban, and its figures of the busiest and active rooms.
        kept = await client.xadd(f"{prefix}stream:lobby", {"h": "ann", "m": "from before", "t": stamp, "c": "c-1"})
        await client.zadd(f"{prefix}busiest", {"lobby": 1})
        await client.zadd(f"{prefix}active", {"lobby": 1767225600})
        await client.zadd(f"{prefix}deleted:lobby", {"1-1": 1})
        await client.set(f"{prefix}cid:lobby:c-1", f"{kept} its-attempt", ex=600)
        ban = json.dumps({"h": "bob", "a": None, "r": None, "why": "spam"})
        await client.hset(f"{prefix}bans", "7", f"1767225600000000 - {ban}")
        await client.set(f"{prefix}ban-ids", 7)
        backend = RedisBackend(REDIS_URL, key_prefix=prefix)
        try:
            await backend.start()
            assert [m.message for m in (await backend.history("lobby", 10)).messages] == ["from before"]
            resent = await store(backend, "lobby", "ann", "from before", "c-1")
            assert resent.duplicate and resent.message.id == kept
            assert [(b.id, b.handle, b.reason) for b in await backend.bans()] == [("7", "bob", "spam")]
            assert (await backend.add_ban("cy", None, None, None, "")).id == "8"  # ids go on from the old counter
            keys = RedisKeys(prefix)
            assert 0 < await client.ttl(keys.client_id("lobby", "c-1")) <= 600
            assert await client.zcard(keys.deleted("lobby")) == 1
            assert [(room.label, room.message_count) for room in await backend.busiest_rooms(5)] == [("lobby", 1)]
            assert await client.zscore(keys.active, "lobby") == 1767225600
            old_names = tuple(
                f"{prefix}{name}" for name in ("stream:", "deleted:", "cid:", "bans", "ban-ids", "busiest", "active")
            )
            assert [key async for key in client.scan_iter(match=f"{prefix}*") if key.startswith(old_names)] == []
        finally:
            await backend.close()
        # A second start finds the mark and renames nothing: a key named like the old layout stays.
        await client.set(f"{prefix}stream:stray", "not a stream")
        again = RedisBackend(REDIS_URL, key_prefix=prefix)
        try:
            await again.start()
            assert await client.exists(f"{prefix}stream:stray")
        finally:
            await again.close()
    finally:
        await client.aclose()
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

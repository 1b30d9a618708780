"""What a Redis stream entry and a published message hold, who sent a message included, as this release
writes them and as earlier releases did; the key layout of an earlier release renamed at start."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as redis

from backends.base import StoredMessage, utc_timestamp
from backends.redis.backend import RedisBackend
from backends.redis.channel import published_message
from backends.redis.keys import RedisKeys
from tests.support.factories.redis import RedisFactory
from tests.support.messages import store
from tests.support.recorder import Recorder
from tests.support.redis import REDIS_URL, delete_prefix, require_redis, unique_prefix
from tests.support.redis_away import away_from_pub_sub


@pytest.mark.gen_test(timeout=60)
async def test_user_and_moderator_reach_another_process_live_and_after_it_was_away():
    """Live, a message comes to the other process as the store script publishes it; after a cut, as its
    stream entry, read in the catch-up: who sent it comes along both ways."""
    senders = [(None, False), ("user-7 ü", False), ("mod-1", True), (None, True)]
    async with away_from_pub_sub() as away:
        recorder, writer = away.recorder, away.writer
        live = [(await store(writer, "lobby", "ann", "live", None, *sender)).message for sender in senders]
        await recorder.wait_for(4)
        await away.cut()
        missed = [(await store(writer, "lobby", "ann", "missed", None, *sender)).message for sender in senders]
        away.restore()
        await recorder.wait_for(8, timeout=20)
        assert recorder.delivered == [*live, *missed] and recorder.gaps == []
        for message in recorder.delivered:
            assert type(message.moderator) is bool
        assert [(m.user, m.moderator) for m in recorder.delivered] == senders * 2


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

"""The room's log on Redis beyond the shared contract (tests/contract/test_message_log.py): what it keeps
in Redis and for how long, and changes reaching a process that was away from pub/sub, in the room's order
with the messages."""

from __future__ import annotations

import pytest
import redis.asyncio as redis

from backends.base import NewMessage, StoredMessage, utc_timestamp
from backends.changes import ChangeKind
from backends.redis.backend import RedisBackend
from backends.redis.keys import RedisKeys
from backends.redis.search import CHUNK
from backends.search import SearchQuery
from tests.support.factories.redis import RedisFactory
from tests.support.redis import REDIS_URL
from tests.support.redis_away import away_from_pub_sub
from tests.support.waiting import eventually

ANN = "sub:ann"
EDITED = "2026-12-06T12:00:00+00:00"


async def said(backend: RedisBackend, text: str) -> StoredMessage:
    return (await backend.store(NewMessage("lobby", "ann", text, None, utc_timestamp(), author=ANN))).message


@pytest.mark.gen_test(timeout=30)
async def test_pruning_takes_the_pruned_messages_state_and_changes_out_of_redis():
    factory = RedisFactory()
    client = redis.from_url(REDIS_URL, decode_responses=True)
    keys = RedisKeys(factory.prefix)
    backend = await factory.create(retain_per_room=5)
    try:
        old = await said(backend, "old")
        await backend.edit_message("lobby", old.id, "old!", EDITED, frozenset({ANN}))
        await backend.react("lobby", old.id, "sub:bob", "👍", True)
        assert await client.hkeys(keys.current("lobby")) == [old.id, f"{old.id}:who"]
        stored = [await said(backend, f"message {n}") for n in range(12)]
        await backend.react("lobby", stored[-1].id, "sub:bob", "👍", True)
        pruned = await client.get(keys.pruned("lobby"))
        assert pruned is not None and backend.id_key(old.id) <= backend.id_key(pruned)
        assert await client.hkeys(keys.current("lobby")) == [stored[-1].id, f"{stored[-1].id}:who"]
        # The changes made before the newest pruned message went with it; the last one stays.
        changes = await client.xrange(keys.changes("lobby"))
        assert [fields["i"] for _, fields in changes] == [stored[-1].id]
    finally:
        await backend.close()
        await client.aclose()
        await factory.dispose()


@pytest.mark.gen_test(timeout=30)
async def test_a_deleted_or_expired_message_leaves_no_state_behind():
    factory = RedisFactory()
    client = redis.from_url(REDIS_URL, decode_responses=True)
    keys = RedisKeys(factory.prefix)
    backend = await factory.create()
    try:
        first, second = await said(backend, "one"), await said(backend, "two")
        for message in (first, second):
            await backend.react("lobby", message.id, "sub:bob", "🎉", True)
        assert await backend.delete_message("lobby", first.id, frozenset({ANN}))
        assert await client.hkeys(keys.current("lobby")) == [second.id, f"{second.id}:who"]
        assert await backend.expire_rooms("9999-01-01T00:00:00+00:00") == 1
        assert await client.exists(keys.changes("lobby"), keys.current("lobby"), keys.stream("lobby")) == 0
    finally:
        await backend.close()
        await client.aclose()
        await factory.dispose()


@pytest.mark.gen_test(timeout=60)
async def test_search_reads_each_chunk_as_it_now_stands_on_another_process():
    """The edited message lies past the first chunk a search reads, and another process searches: it is
    found by its latest text only, once, as history reads it, and none of its changes is a result."""
    factory = RedisFactory()
    backend = await factory.create()
    other = await factory.create()  # another process: what it finds is read from Redis
    try:
        first = await said(backend, "the original wording")
        for n in range(CHUNK + 20):
            await backend.store(NewMessage("lobby", "bob", f"filler {n}", None, utc_timestamp()))
        for n in range(30):
            await backend.edit_message("lobby", first.id, f"a revised wording {n}", EDITED, frozenset({ANN}))
        await backend.react("lobby", first.id, "sub:bob", "👍", True)
        page = await other.search("lobby", SearchQuery.parse("wording"), 10)
        assert page.has_more is False
        assert page.messages == [await other.message("lobby", first.id)]
        assert page.messages[0].message == "a revised wording 29" and page.messages[0].reactions == (("👍", 1),)
        assert (await other.search("lobby", SearchQuery.parse("original"), 10)).messages == []
        assert (await other.search("lobby", SearchQuery.parse("revised 3"), 10)).messages == []
    finally:
        await backend.close()
        await other.close()
        await factory.dispose()


@pytest.mark.gen_test(timeout=60)
async def test_a_process_away_from_pub_sub_hears_the_changes_it_missed_in_the_room_s_order():
    """While its connections are cut, another process stores, edits, reacts and deletes. Back, it hears
    each once, messages and changes in the room's one order, and the next change live."""
    async with away_from_pub_sub() as away:
        recorder, writer = away.recorder, away.writer
        before = await said(writer, "before")
        await recorder.wait_for(1)
        await away.cut()
        edit = await writer.edit_message("lobby", before.id, "before!", EDITED, frozenset({ANN}))
        during = await said(writer, "during")
        reaction = await writer.react("lobby", during.id, "sub:bob", "👍", True)
        assert await writer.delete_message("lobby", before.id)
        away.restore()
        expected = [
            ("deliver", "lobby", before.id),
            ("edit", "lobby", before.id),
            ("deliver", "lobby", during.id),
            ("reactions", "lobby", during.id),
            ("deleted", "lobby", before.id),
        ]
        await eventually(lambda: len(recorder.events) >= len(expected), timeout=20)
        assert recorder.events == expected and recorder.gaps == []
        assert recorder.changes[:2] == [edit, reaction]
        live = await writer.edit_message("lobby", during.id, "during!", EDITED, frozenset({ANN}))
        marker = await said(writer, "marker")  # after the edit: a second notice of any change would precede it
        await recorder.wait_for(3)
        assert recorder.events[len(expected) :] == [("edit", "lobby", during.id), ("deliver", "lobby", marker.id)]
        assert recorder.changes[-1] == live and recorder.changes[-2].kind is ChangeKind.DELETE

"""Redis backend moderation beyond the shared contract: deletions, bans and locks told to every process of a
deployment, also to one that was away from pub/sub, and what they leave in Redis."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest
import redis.asyncio as redis

from backends.base import utc_timestamp
from backends.errors import MessageDeleted
from backends.redis.backend import RedisBackend
from backends.redis.keys import RedisKeys
from tests.support.factories.redis import RedisFactory
from tests.support.messages import store
from tests.support.recorder import Recorder
from tests.support.redis import REDIS_URL
from tests.support.redis_away import away_from_pub_sub
from tests.support.waiting import eventually


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


@pytest.mark.gen_test(timeout=30)
async def test_a_moderation_change_publishes_one_notice_and_what_changes_nothing_publishes_none():
    """The contract's notices name no change, so no later notice can show one too many went before it; the
    moderation channel can: a listener of its own reads every payload, and one the test publishes last is
    the marker, after whatever the changes published."""
    factory = RedisFactory()
    keys = RedisKeys(factory.prefix, int(urlsplit(REDIS_URL).path.strip("/") or 0))
    client = redis.from_url(REDIS_URL, decode_responses=True)
    listener = client.pubsub(ignore_subscribe_messages=True)
    backend = await factory.create()
    try:
        await listener.subscribe(keys.moderation_channel)
        ban = await backend.add_ban("ann", None, None, None, "")
        assert await backend.lift_ban(ban.id)
        await backend.set_locked("lobby", True)
        assert not await backend.lift_ban(ban.id)  # changes nothing, from here on
        assert not await backend.lift_ban("999999")
        await backend.set_locked("lobby", True)
        await backend.set_locked("other", False)
        await backend.bans()
        await backend.locked_rooms()
        [message] = [(await store(backend, "lobby", "ann", "hi", None)).message]
        assert await backend.delete_message("lobby", message.id)  # told as a deletion, on the room's channel
        await client.publish(keys.moderation_channel, "marker")
        heard: list[str] = []

        async def until_the_marker() -> None:
            while not heard or heard[-1] != "marker":
                notice = await listener.get_message(timeout=1)  # None too for the subscription's answer
                if notice is not None:
                    heard.append(notice["data"])

        await asyncio.wait_for(until_the_marker(), 10)
        assert heard == ["bans", "bans", "locks", "marker"]
    finally:
        await listener.aclose()
        await client.aclose()
        await backend.close()
        await factory.dispose()


@pytest.mark.gen_test(timeout=60)
async def test_a_process_away_from_pub_sub_hears_what_it_missed_of_deletions_and_moderation():
    """While its connections are cut, another process deletes every message it had delivered (no gap when
    it is back, though the stream now starts past them: they were deleted, not pruned) and bans someone.
    Back, it is told of each deletion once, and to read moderation again."""
    async with away_from_pub_sub() as away:
        recorder, writer = away.recorder, away.writer
        stored = [(await store(writer, "lobby", "ann", f"m{n}", None)).message for n in range(3)]
        await recorder.wait_for(3)
        await away.cut()
        for message in stored:
            assert await writer.delete_message("lobby", message.id)
        await writer.add_ban("ann", None, None, None, "")
        later = (await store(writer, "lobby", "ann", "while away", None)).message
        away.restore()
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

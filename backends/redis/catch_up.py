"""Reading what a room missed while its session was away: the stream past the last message delivered,
then the deletions past the last one told, in one transaction with the stream's facts, so that a gap is
told exactly when one happened (pruned past, a failover that lost the last stores, a stream made again).
"""

from __future__ import annotations

from redis.asyncio import Redis

from backends.redis.delivery import Delivery, Feed
from backends.redis.entries import (
    ZERO_ID,
    entry_message,
    format_stream_id,
    is_missing_stream,
    parse_stream_id,
    stream_facts,
)
from backends.redis.keys import RedisKeys

CATCH_UP_PAGE = 500


async def catch_up(commands: Redis, keys: RedisKeys, delivery: Delivery, room: str, feed: Feed) -> None:
    """Deliver what ``room``'s stream holds past ``feed.last``, and the deletions past ``feed.deletions``."""
    stream, deleted = keys.stream(room), keys.deleted(room)
    # One transaction: the deletions counted are those the stream's facts know of.
    pipe = commands.pipeline(transaction=True)
    pipe.xinfo_stream(stream)
    pipe.zcard(deleted)
    pipe.xrange(stream, f"({format_stream_id(feed.last)}" if feed.last != ZERO_ID else "-", "+", CATCH_UP_PAGE)
    pipe.zrangebyscore(deleted, f"({feed.deletions}", "+inf", withscores=True)
    pipe.get(keys.room_epoch(room))
    pipe.get(keys.pruned(room))
    info, deletions, entries, missed, epoch, newest_pruned = await pipe.execute(raise_on_error=False)
    for reply in (deletions, entries, missed, epoch, newest_pruned):
        if isinstance(reply, Exception):
            raise reply
    if isinstance(info, Exception) and not is_missing_stream(info):
        raise info
    epoch = epoch or ""
    if feed.epoch and epoch != feed.epoch:
        delivery.stream_lost(room, feed)
        feed.epoch = epoch
        await catch_up(commands, keys, delivery, room, feed)  # the new stream, from its beginning
        return
    feed.epoch = epoch
    issued, first, pruned = stream_facts(info, int(deletions))
    if isinstance(info, dict) and issued < feed.last:
        # This Redis never issued what we delivered last: a master a failover demoted had stored it
        # and published it, and its replica, now master, had not received it yet (replication is
        # asynchronous; such a store was never acknowledged). Clients saw what history will not hold:
        # tell them, and go on from what this Redis holds (its new ids may be lower than the lost).
        delivery.gap(room)
        feed.last = issued
    if newest_pruned is not None:
        lost = feed.last < parse_stream_id(newest_pruned)
    else:
        # Pruned before the newest pruned id was recorded: behind the first kept entry some may be gone,
        # or only the one delivered last; the store cannot tell, and an extra notice is the safe side.
        lost = pruned and feed.last < first
    if lost:
        # Pruned past what we last delivered (a very busy room while we were away): some are gone.
        delivery.gap(room)
    while entries:
        for entry_id, fields in entries:
            delivery.deliver(feed, parse_stream_id(entry_id), entry_message(room, entry_id, fields))
            delivery.stats.caught_up += 1
        if len(entries) < CATCH_UP_PAGE:
            break
        entries = await commands.xrange(stream, f"({format_stream_id(feed.last)}", "+", CATCH_UP_PAGE)
    # Deletions made while this process was away, after the messages (a message deleted meanwhile was
    # not read above; one delivered before it went away is told of now).
    for message_id, number in missed:
        delivery.deleted(room, feed, int(number), str(message_id))
    # An unsubscribe while reading takes effect from here on; the messages above were already owed.

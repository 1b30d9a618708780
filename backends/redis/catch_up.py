"""Reading what a room missed while its session was away: the stream's messages and the room's changes
past the last position delivered, merged in the room's order, each page of both in one transaction (the
first with the stream's facts), so that a gap is told exactly when one happened (pruned past, a failover
that lost the last stores, a stream made again) and no change falls between two pages of messages.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from backends.redis.channel import stream_change
from backends.redis.delivery import Delivery, Feed
from backends.redis.entries import (
    MAX_ID,
    ZERO_ID,
    StreamId,
    entry_message,
    format_stream_id,
    is_missing_stream,
    parse_stream_id,
    stream_facts,
)
from backends.redis.keys import RedisKeys

CATCH_UP_PAGE = 500


async def catch_up(commands: Redis, keys: RedisKeys, delivery: Delivery, room: str, feed: Feed) -> None:
    """Deliver the messages and changes ``room`` holds past ``feed.last``, in the room's order."""
    stream, changes = keys.stream(room), keys.changes(room)
    # One transaction: the deletions counted are those the stream's facts know of.
    pipe = commands.pipeline(transaction=True)
    pipe.xinfo_stream(stream)
    pipe.zcard(keys.deleted(room))
    pipe.xrange(stream, _after(feed.last), "+", CATCH_UP_PAGE)
    pipe.xrange(changes, _after(feed.last), "+", CATCH_UP_PAGE)
    pipe.get(keys.room_epoch(room))
    pipe.get(keys.pruned(room))
    info, deletions, entries, changed, epoch, newest_pruned = await pipe.execute(raise_on_error=False)
    for reply in (deletions, entries, changed, epoch, newest_pruned):
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
    while _deliver_page(delivery, room, feed, entries, changed):
        pipe = commands.pipeline(transaction=True)
        pipe.xrange(stream, _after(feed.last), "+", CATCH_UP_PAGE)
        pipe.xrange(changes, _after(feed.last), "+", CATCH_UP_PAGE)
        entries, changed = await pipe.execute()
    # An unsubscribe while reading takes effect from here on; what was delivered above was already owed.


def _after(position: StreamId) -> str:
    return f"({format_stream_id(position)}" if position != ZERO_ID else "-"


def _deliver_page(delivery: Delivery, room: str, feed: Feed, entries: Any, changed: Any) -> bool:
    """Deliver a page of messages and one of changes, read together, in the room's order, up to where the
    shorter of the full pages ends (what lies past it is read next); whether there is more to read."""
    through = MAX_ID
    for page in (entries, changed):
        if len(page) == CATCH_UP_PAGE:
            through = min(through, parse_stream_id(page[-1][0]))
    merged = sorted(
        [(parse_stream_id(entry_id), True, entry_id, fields) for entry_id, fields in entries]
        + [(parse_stream_id(at), False, at, fields) for at, fields in changed]
    )
    for key, is_message, position, fields in merged:
        if key > through:
            break
        if is_message:
            delivery.deliver(feed, key, entry_message(room, position, fields))
            delivery.stats.caught_up += 1
        else:
            delivery.changed(feed, key, stream_change(room, position, fields))
    return through != MAX_ID

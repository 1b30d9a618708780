"""Reading a room's history from its Redis stream: pages of it, and what a reconnecting client missed.

A replay tells a gap (history pruned past the client's id) from what is not one: messages a moderator
deleted (counted in the room's deleted set, ``backends.redis.moderation``) and a client id that names a
deleted message, which was a message all the same.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import RedisError

from backends.base import HistoryPage, Replay
from backends.errors import BackendUnavailable
from backends.redis.entries import (
    MAX_ID,
    ZERO_ID,
    format_stream_id,
    is_missing_stream,
    page_of_entries,
    parse_stream_id,
    stream_facts,
)
from backends.redis.keys import RedisKeys


async def read_history(
    redis: Redis, keys: RedisKeys, room: str, limit: int, before: str | None, after: str | None
) -> HistoryPage:
    """``Backend.history``: one XRANGE (after) or XREVRANGE (newest, or before), one entry more than asked."""
    stream = keys.stream(room)
    try:
        if after is not None:
            start = parse_stream_id(after)
            if start == MAX_ID:
                return HistoryPage([], False)
            low = "-" if start == ZERO_ID else f"({format_stream_id(start)}"
            return page_of_entries(room, await redis.xrange(stream, low, "+", limit + 1), limit)
        high = "+"
        if before is not None:
            end = parse_stream_id(before)
            if end == ZERO_ID:
                return HistoryPage([], False)
            high = f"({format_stream_id(end)}"
        return page_of_entries(room, await redis.xrevrange(stream, high, "-", limit + 1), limit, newest_first=True)
    except (RedisError, OSError) as exc:
        raise BackendUnavailable(f"history not read: {exc}") from None


async def read_replay(redis: Redis, keys: RedisKeys, room: str, since: str, limit: int) -> Replay:
    """``Backend.replay`` in one round trip: the stream's facts, the entry ``since`` names, and the page after it."""
    since_key = parse_stream_id(since)
    stream = keys.stream(room)
    # Nothing lies after MAX_ID, and Redis refuses an interval starting past it.
    after = {ZERO_ID: "-", MAX_ID: "+"}.get(since_key, f"({format_stream_id(since_key)}")
    try:
        # One transaction: a trim by another process's store cannot fall between the facts and the page.
        pipe = redis.pipeline(transaction=True)
        pipe.xinfo_stream(stream)
        pipe.zcard(keys.deleted(room))
        pipe.xrange(stream, since, since)
        pipe.zscore(keys.deleted(room), since)
        pipe.xrange(stream, after, "+", limit + 1)
        pipe.get(keys.pruned(room))
        replies = await pipe.execute(raise_on_error=False)
        for reply in replies:
            if isinstance(reply, Exception) and not is_missing_stream(reply):
                raise BackendUnavailable(f"history not read: {reply}")
        info, deletions, kept, deleted, entries, newest_pruned = replies
        last, first, pruned = stream_facts(info, int(deletions))
        seen = kept or deleted is not None  # a deleted message was one all the same
        page = page_of_entries(room, entries, limit)
        if since_key == ZERO_ID:
            return Replay(gap=pruned, after=since, page=page)
        if newest_pruned is not None:
            pruned_through = parse_stream_id(newest_pruned)
            if since_key <= pruned_through or seen:
                # Pruning drops the stream's head up to that entry: only a client behind it missed any.
                return Replay(gap=since_key < pruned_through, after=since, page=page)
        if since_key < first and pruned:
            # Pruned before the newest pruned id was recorded: a client behind the first kept entry may have
            # missed some, or only the entry it saw; the store cannot tell, and an extra notice is the safe side.
            return Replay(gap=True, after=since, page=page)
        if since_key <= last and seen:
            return Replay(gap=False, after=since, page=page)
        # The client saw a message this stream never held: Redis lost its data since. What it holds
        # now is read from the start (a second round trip, on this rare path only).
        entries = await redis.xrange(stream, "-", "+", limit + 1)
        return Replay(gap=True, after="0", page=page_of_entries(room, entries, limit))
    except (RedisError, OSError) as exc:
        raise BackendUnavailable(f"history not read: {exc}") from None

"""Reading a room's history from its Redis stream: pages of it, and what a reconnecting client missed,
each message as it now stands (``lua/page.lua``), with the changes made since when asked
(``lua/changes.lua``; see ``backends.redis.log``).

A replay tells a gap (history pruned past the client's id) from what is not one: messages a moderator
deleted (counted in the room's deleted set, ``backends.redis.moderation``) and a client id that names a
deleted message, which was a message all the same.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError, RedisError

from backends.base import HistoryPage, MessageChange, Replay, StoredMessage
from backends.errors import BackendUnavailable
from backends.redis.channel import stream_change
from backends.redis.entries import (
    MAX_ID,
    ZERO_ID,
    StreamId,
    as_it_stands,
    entry_message,
    format_stream_id,
    is_missing_stream,
    parse_stream_id,
    stream_facts,
)
from backends.redis.keys import RedisKeys
from backends.redis.scripts import CHANGES, PAGE, load_scripts, run_script


def _page(room: str, reply: list[Any], limit: int, newest_first: bool = False) -> HistoryPage:
    """A page as ``lua/page.lua`` answers it, read with one more than ``limit``, oldest first."""
    entries, states = reply
    messages = [
        as_it_stands(entry_message(room, entry_id, dict(zip(flat[::2], flat[1::2], strict=True))), state)
        for (entry_id, flat), state in zip(entries, states, strict=True)
    ]
    if newest_first:
        messages.reverse()
    has_more = len(messages) > limit
    if has_more:
        messages = messages[1:] if newest_first else messages[:limit]
    return HistoryPage(messages, has_more)


async def read_history(
    redis: Redis, keys: RedisKeys, room: str, limit: int, before: str | None, after: str | None
) -> HistoryPage:
    """``Backend.history``: one XRANGE (after) or XREVRANGE (newest, or before), one entry more than asked,
    with the messages' changes, in one script."""
    page_keys = [keys.stream(room), keys.current(room)]
    try:
        if after is not None:
            start = parse_stream_id(after)
            if start == MAX_ID:
                return HistoryPage([], False)
            low = "-" if start == ZERO_ID else f"({format_stream_id(start)}"
            return _page(room, await run_script(redis, PAGE, page_keys, ["after", low, "+", limit + 1]), limit)
        high = "+"
        if before is not None:
            end = parse_stream_id(before)
            if end == ZERO_ID:
                return HistoryPage([], False)
            high = f"({format_stream_id(end)}"
        reply = await run_script(redis, PAGE, page_keys, ["before", high, "-", limit + 1])
        return _page(room, reply, limit, newest_first=True)
    except (RedisError, OSError) as exc:
        raise BackendUnavailable(f"history not read: {exc}") from None


async def read_message(redis: Redis, keys: RedisKeys, room: str, message_id: str) -> StoredMessage | None:
    """``Backend.message``: the entry, and its changes, in one round trip."""
    key = parse_stream_id(message_id)
    if key in (ZERO_ID, MAX_ID):
        return None
    entry_id = format_stream_id(key)
    try:
        pipe = redis.pipeline(transaction=True)
        pipe.xrange(keys.stream(room), entry_id, entry_id)
        pipe.hget(keys.current(room), entry_id)
        entries, state = await pipe.execute()
    except (RedisError, OSError) as exc:
        raise BackendUnavailable(f"message not read: {exc}") from None
    if not entries:
        return None
    return as_it_stands(entry_message(room, *entries[0]), state)


def _changes(
    room: str, entries: list[Any], through: StreamId, origin: StreamId, pruned_through: StreamId
) -> tuple[MessageChange, ...]:
    """The changes ``lua/changes.lua`` read, made up to ``through`` to the messages at or before ``origin``
    that retention kept (later changes to a pruned message stay in the stream until its head moves past)."""
    changes = (stream_change(room, at, dict(zip(flat[::2], flat[1::2], strict=True))) for at, flat in entries)
    return tuple(
        change
        for change in changes
        if parse_stream_id(change.at) <= through and pruned_through < parse_stream_id(change.id) <= origin
    )


async def read_replay(
    redis: Redis, keys: RedisKeys, room: str, since: str, limit: int, origin: str | None = None
) -> Replay:
    """``Backend.replay`` in one round trip (a transaction): the stream's facts, the entry or change
    ``since`` names, the page after it as it now stands, and with ``origin`` the changes made since."""
    since_key = parse_stream_id(since)
    origin_key = None if origin is None else parse_stream_id(origin)
    stream = keys.stream(room)
    # Nothing lies after MAX_ID, and Redis refuses an interval starting past it.
    after = {ZERO_ID: "-", MAX_ID: "+"}.get(since_key, f"({format_stream_id(since_key)}")
    try:
        for attempt in range(2):
            # One transaction: a trim by another process's store cannot fall between the facts and the page.
            pipe = redis.pipeline(transaction=True)
            pipe.xinfo_stream(stream)
            pipe.zcard(keys.deleted(room))
            pipe.xrange(stream, since, since)
            pipe.zscore(keys.deleted(room), since)
            pipe.execute_command(*PAGE.command([stream, keys.current(room)], ["after", after, "+", limit + 1]))
            pipe.get(keys.pruned(room))
            pipe.xrange(keys.changes(room), since, since)
            if origin_key is not None:
                pipe.execute_command(*CHANGES.command([keys.changes(room), keys.deleted(room)], [after]))
            replies = await pipe.execute(raise_on_error=False)
            if attempt or not any(isinstance(reply, NoScriptError) for reply in replies):
                break
            await load_scripts(redis)  # a Redis that restarted, or a new master, may not hold them
        for reply in replies:
            if isinstance(reply, Exception) and not is_missing_stream(reply):
                raise BackendUnavailable(f"history not read: {reply}")
        info, deletions, kept, deleted, read, newest_pruned, a_change, *changed = replies
        last, first, pruned = stream_facts(info, int(deletions))
        # A deleted message was one all the same, and a change took its position in the room as one does.
        seen = kept or deleted is not None or a_change
        page = _page(room, read, limit)
        pruned_through = ZERO_ID if newest_pruned is None else parse_stream_id(newest_pruned)
        changes: tuple[MessageChange, ...] = ()
        if origin_key is not None:
            through = parse_stream_id(page.messages[-1].id) if page.has_more else MAX_ID
            changes = _changes(room, changed[0], through, origin_key, pruned_through)
        if since_key == ZERO_ID:
            return Replay(gap=pruned, after=since, page=page, changes=changes)
        if newest_pruned is not None:
            if since_key <= pruned_through or seen:
                # Pruning drops the stream's head up to that entry: only a client behind it missed any.
                return Replay(gap=since_key < pruned_through, after=since, page=page, changes=changes)
        if since_key < first and pruned:
            # Pruned before the newest pruned id was recorded: a client behind the first kept entry may have
            # missed some, or only the entry it saw; the store cannot tell, and an extra notice is the safe side.
            return Replay(gap=True, after=since, page=page, changes=changes)
        if since_key <= last and seen:
            return Replay(gap=False, after=since, page=page, changes=changes)
        # The client saw a message this stream never held: Redis lost its data since. What it holds
        # now is read from the start (a second round trip, on this rare path only).
        return Replay(gap=True, after="0", page=await read_history(redis, keys, room, limit, None, "0"))
    except (RedisError, OSError) as exc:
        raise BackendUnavailable(f"history not read: {exc}") from None

"""Searching a room's Redis stream: its entries read newest first, a chunk at a time, each as it now
stands (``lua/page.lua``: its edited text, when edited, its reactions), and matched here.

Redis keeps no index of words, so a search reads what the stream retains, at most
``SEARCH_SCAN_MESSAGES`` entries per search. An edited message matches its current text only; a message
a moderator or its author deleted, or retention trimmed, is no longer in the stream and is never found;
changes live in a stream of their own (``RedisKeys.changes``) and are never read here.
"""

from __future__ import annotations

from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from backends.errors import BackendUnavailable
from backends.messages import StoredMessage
from backends.redis.entries import ZERO_ID, as_it_stands, flat_entry_message, format_stream_id, parse_stream_id
from backends.redis.keys import RedisKeys
from backends.redis.scripts import PAGE, run_script
from backends.search import SEARCH_SCAN_MESSAGES, SearchPage, SearchQuery

# Entries per script call: a few round trips for a whole search, and no reply of megabytes.
CHUNK = 500


async def search_stream(
    redis: Redis, keys: RedisKeys, room: str, query: SearchQuery, limit: int, before: str | None
) -> SearchPage:
    """``Backend.search``: the newest matches older than ``before``, reading the stream backwards."""
    high = "+"
    if before is not None:
        end = parse_stream_id(before)
        if end == ZERO_ID:
            return SearchPage([], False)
        high = f"({format_stream_id(end)}"
    found: list[StoredMessage] = []
    if query.is_empty:
        return SearchPage(found, False)
    page_keys = [keys.stream(room), keys.current(room)]
    read = 0
    try:
        while read < SEARCH_SCAN_MESSAGES:
            count = min(CHUNK, SEARCH_SCAN_MESSAGES - read)
            entries, states = cast(
                tuple[list[tuple[str, list[str]]], list[Any]],
                await run_script(redis, PAGE, page_keys, ["before", high, "-", count]),
            )
            for (entry_id, flat), state in zip(entries, states, strict=True):
                message = as_it_stands(flat_entry_message(room, entry_id, flat), state)
                if query.matches(message.message):
                    if len(found) == limit:
                        return SearchPage(found, True)
                    found.append(message)
            read += len(entries)
            if len(entries) < count:
                return SearchPage(found, False)  # the stream's first entry was read
            high = f"({entries[-1][0]}"
    except (RedisError, OSError) as exc:
        raise BackendUnavailable(f"search not read: {exc}") from None
    return SearchPage(found, True)  # stopped at the bound: older entries were left unread

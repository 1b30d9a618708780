"""Renaming the keys of the earlier Redis layout to today's, once, when a process starts.

Earlier releases named a room's keys ``<prefix>stream:<room>``, ``<prefix>deleted:<room>`` and
``<prefix>cid:<room>:<client id>``, the bans ``<prefix>bans`` and ``<prefix>ban-ids``, and the
busiest and active rooms ``<prefix>busiest`` and ``<prefix>active``. Today's carry hash tags
(``backends.redis.keys.RedisKeys``). A process that finds no layout mark
renames whatever keys of the earlier layout exist (``RENAME`` keeps a key's expiry), then sets the
mark. Processes starting together may both rename: a key another one moved first is skipped. The
short-lived keys (attempt tokens, quotas, presence) are left to expire.

All processes of a deployment move to the new layout together: one of an earlier release stores under
the old names, which a process of this release no longer reads.
"""

from __future__ import annotations

import logging
import re

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from backends.redis.keys import RedisKeys

log = logging.getLogger(__name__)

LAYOUT_VERSION = "2"
_GLOB = re.compile(r"([*?\[\]\\])")


async def migrate_layout(redis: Redis, keys: RedisKeys) -> int:
    """Rename the earlier layout's keys (if this deployment has not been moved yet); how many moved."""
    if await redis.get(keys.layout) == LAYOUT_VERSION:
        return 0
    prefix = keys.prefix
    moves: list[tuple[str, str]] = [
        (f"{prefix}bans", keys.bans),
        (f"{prefix}ban-ids", keys.ban_ids),
        (f"{prefix}busiest", keys.busiest),
        (f"{prefix}active", keys.active),
    ]
    pattern_prefix = _GLOB.sub(r"\\\1", prefix)
    for kind, rename in (("stream", keys.stream), ("deleted", keys.deleted)):
        async for key in redis.scan_iter(match=f"{pattern_prefix}{kind}:*", count=1000):
            moves.append((key, rename(key[len(prefix) + len(kind) + 1 :])))
    async for key in redis.scan_iter(match=f"{pattern_prefix}cid:*", count=1000):
        room, _, client_id = key[len(prefix) + len("cid:") :].partition(":")
        moves.append((key, keys.client_id(room, client_id)))
    moved = 0
    for old, new in moves:
        try:
            if await redis.renamenx(old, new):
                moved += 1
            else:
                log.warning("Redis: %s not renamed to %s, which exists already", old, new)
        except ResponseError as exc:
            if "no such key" not in str(exc).lower():
                raise
    if moved:
        log.warning("Redis: renamed %d keys of the earlier layout to today's", moved)
    await redis.set(keys.layout, LAYOUT_VERSION)
    return moved

"""Removing idle Redis rooms (``history.expire_after_days``) with their streams, on any process.

The ``active`` sorted set holds each room's newest message time, counted after each store; a room is
removed only if its stream has issued nothing since its newest message was read (``lua/expire.lua``).
"""

from __future__ import annotations

from typing import Any, cast

from redis.asyncio import Redis

from backends.redis.entries import is_missing_stream, parse_stream_id, unix_seconds
from backends.redis.keys import RedisKeys
from backends.redis.scripts import EXPIRE, Run, run_scripts

EXPIRE_CHUNK = 500  # idle rooms removed in one pipeline


async def expire_idle_rooms(redis: Redis, keys: RedisKeys, idle_since: str) -> int:
    """Remove the rooms with no message since ``idle_since``; how many went."""
    cutoff = float(unix_seconds(idle_since))
    await _note_activity_of_older_rooms(redis, keys)
    removed = 0
    while idle := cast(list[str], await redis.zrangebyscore(keys.active, "-inf", f"({cutoff!r}", 0, EXPIRE_CHUNK)):
        read = redis.pipeline(transaction=False)
        for room in idle:
            read.xinfo_stream(keys.stream(room))
        infos = await read.execute(raise_on_error=False)
        removals: list[Run] = []
        gone: list[str] = []
        fresher: dict[str, float] = {}
        for room, info in zip(idle, infos, strict=True):
            if isinstance(info, Exception) and not is_missing_stream(info):
                raise info
            newest = info.get("last-entry") if isinstance(info, dict) else None
            if newest and float(unix_seconds(newest[1]["t"])) >= cutoff:
                fresher[room] = float(unix_seconds(newest[1]["t"]))  # stored in since the active set was read
                continue
            last = str(info["last-generated-id"]) if isinstance(info, dict) else ""
            gone.append(room)
            room_keys = [
                keys.stream(room),
                keys.deleted(room),
                keys.room_epoch(room),
                keys.pruned(room),
                keys.changes(room),
                keys.current(room),
            ]
            removals.append((EXPIRE, room_keys, [last]))
        replies = await run_scripts(redis, removals)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        went = [room for room, reply in zip(gone, replies, strict=True) if int(reply)]
        tidy = redis.pipeline(transaction=False)
        if went:
            tidy.zrem(keys.active, *went)
            tidy.zrem(keys.busiest, *went)
        # A room not removed leaves the idle range, so that the next round reads the next rooms.
        kept = {room: fresher.get(room, cutoff) for room in idle if room not in went}
        if kept:
            tidy.zadd(keys.active, kept, gt=True)
        await tidy.execute()
        removed += len(went)
        if len(idle) < EXPIRE_CHUNK:
            break
    return removed


async def _note_activity_of_older_rooms(redis: Redis, keys: RedisKeys) -> None:
    """Rooms stored in before the ``active`` set was kept: their newest entry's time, from its id."""
    for room in cast(list[str], await redis.zdiff([keys.busiest, keys.active])):
        newest = cast(list[tuple[str, Any]], await redis.xrevrange(keys.stream(room), "+", "-", 1))
        if newest:
            seconds = parse_stream_id(newest[0][0])[0] / 1000
            await redis.zadd(keys.active, {room: seconds}, nx=True)

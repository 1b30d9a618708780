"""Removing idle Redis rooms (``history.expire_after_days``) with their streams, on any process.

The ``active`` sorted set holds each room's newest message time; the store script keeps it.
"""

from __future__ import annotations

from typing import Any, cast

from redis.asyncio import Redis

from backends.redis_layout import RedisKeys, parse_stream_id, unix_seconds

EXPIRE_CHUNK = 500  # idle rooms removed in one pipeline

# Removes one idle room, if it is still idle: a message stored since keeps it.
# KEYS: active, busiest, stream, deleted set. ARGV: room, idle since (Unix seconds).
EXPIRE_SCRIPT = """
local newest = redis.call('ZSCORE', KEYS[1], ARGV[1])
if newest and tonumber(newest) < tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[3], KEYS[4])
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 1
end
return 0
"""


async def expire_idle_rooms(redis: Redis, keys: RedisKeys, idle_since: str) -> int:
    """Remove the rooms with no message since ``idle_since``; how many went."""
    cutoff = unix_seconds(idle_since)
    await _note_activity_of_older_rooms(redis, keys)
    removed = 0
    while idle := cast(list[str], await redis.zrangebyscore(keys.active, "-inf", f"({cutoff}", 0, EXPIRE_CHUNK)):
        pipe = redis.pipeline(transaction=False)
        for room in idle:
            room_keys = [keys.active, keys.busiest, keys.stream(room), keys.deleted(room)]
            pipe.eval(EXPIRE_SCRIPT, len(room_keys), *room_keys, room, cutoff)
        removed += sum(int(reply) for reply in await pipe.execute())
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

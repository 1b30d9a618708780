"""Removing idle Redis rooms (``history.expire_after_days``) with their streams, on any process.

The ``active`` sorted set holds each room's newest message time, counted after each store; a room is
removed only if its stream has issued nothing since its newest message was read.
"""

from __future__ import annotations

from typing import Any, cast

from redis.asyncio import Redis

from backends.redis.keys import RedisKeys, is_missing_stream, parse_stream_id, unix_seconds

EXPIRE_CHUNK = 500  # idle rooms removed in one pipeline

# Removes one idle room's keys if nothing was stored since its newest message was read: a message
# stored meanwhile keeps it. The busiest and active sets, in other slots, are updated after it.
# KEYS: stream, deleted set, epoch, newest pruned id. ARGV: the last id the stream had issued when read ('' for
# no stream).
EXPIRE_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  local info = redis.call('XINFO', 'STREAM', KEYS[1])
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' and info[i + 1] ~= ARGV[1] then return 0 end
  end
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
return 1
"""


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
        remove = redis.pipeline(transaction=False)
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
            # (execute_command: a cluster pipeline refuses ``eval`` itself)
            room_keys = (keys.stream(room), keys.deleted(room), keys.room_epoch(room), keys.pruned(room))
            remove.execute_command("EVAL", EXPIRE_SCRIPT, len(room_keys), *room_keys, last)
        went = [room for room, reply in zip(gone, await remove.execute() if gone else [], strict=True) if int(reply)]
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

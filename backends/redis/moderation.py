"""Moderation on Redis: deleting messages, bans and room locks, shared by every process of a deployment.

* **Deleting** a message is ``XDEL`` on its room's stream, in one script with the notice on the room's
  channel, ``-<n> <id>``, beside the messages (JSON arrays) and signals (``!``, ``?``). Each deletion is
  also kept in the room's deleted set (``RedisKeys.deleted``) under its number ``n`` in the room, which
  serves three ends: its size tells pruning (a gap) from deletions (none) in ``stream_facts``; a
  replay from a deleted id knows the id was once a message; and a process that was away from pub/sub
  reads the deletions it missed (numbered past the last it heard) when it catches up. The set grows
  with moderators' deletions only, and goes with the room.
* **Bans** are one hash, ban id -> ``"<created> <expires or -> <json>"``, times in microseconds of
  Redis's own clock, so that every process agrees on when a ban ends. Every script that touches bans
  drops the expired ones first: the hash never keeps a ban that ran out past the next call.
* **Locks** are one set of labels.

After a change of bans or locks, a notice goes out on the deployment's moderation channel, to which
every process's subscriber listens (``RedisKeys.moderation_channel``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from backends.base import Ban, ban_timestamp, check_ban
from backends.errors import BackendUnavailable
from backends.redis.keys import MAX_ID, ZERO_ID, RedisKeys, format_stream_id, parse_stream_id

DELETION_MARK = "-"

# Where a room's delivery starts, asked for on the pub/sub connection right behind its SSUBSCRIBE (see
# ``StreamSubscriber``): the last id the stream ever issued (not its newest entry, which is older when
# the newest was deleted), how many of its messages were deleted so far, and the room's epoch.
# KEYS: stream, deleted set, epoch. Returns {last id ('' for none), deletions, epoch ('' for none)}.
ANCHOR_SCRIPT = """
local deletions = redis.call('ZCARD', KEYS[2])
local epoch = redis.call('GET', KEYS[3]) or ''
if redis.call('EXISTS', KEYS[1]) == 0 then return {'', deletions, epoch} end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
for i = 1, #info, 2 do
  if info[i] == 'last-generated-id' then return {info[i + 1], deletions, epoch} end
end
return {'', deletions, epoch}
"""

# KEYS: stream, deleted set. ARGV: message id, the room's channel. Returns 1 if deleted. (The room's
# count among the busiest is lowered after it, outside the room's slot.)
DELETE_SCRIPT = """
if redis.call('XDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
local number = redis.call('ZCARD', KEYS[2]) + 1
redis.call('ZADD', KEYS[2], number, ARGV[1])
redis.call('SPUBLISH', ARGV[2], '-' .. number .. ' ' .. ARGV[1])
return 1
"""

# The start of every ban script: Redis's clock in microseconds, and the bans in force (expired ones
# deleted on the way) as {id, value, id, value...}. KEYS[1] is the bans hash.
_LIVE_BANS = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local fields = redis.call('HGETALL', KEYS[1])
local live = {}
for i = 1, #fields, 2 do
  local expires = string.match(fields[i + 1], '^%d+ (%S+) ')
  if expires ~= '-' and tonumber(expires) <= now then
    redis.call('HDEL', KEYS[1], fields[i])
  else
    live[#live + 1] = fields[i]
    live[#live + 1] = fields[i + 1]
  end
end
"""
# KEYS: bans, ban ids. ARGV: seconds ('' until lifted), the ban's json, the moderation channel.
ADD_BAN_SCRIPT = (
    _LIVE_BANS
    + """
local id = redis.call('INCR', KEYS[2])
local expires = '-'
if ARGV[1] ~= '' then expires = string.format('%.0f', now + math.floor(tonumber(ARGV[1]) * 1000000)) end
local value = string.format('%.0f', now) .. ' ' .. expires .. ' ' .. ARGV[2]
redis.call('HSET', KEYS[1], id, value)
redis.call('PUBLISH', ARGV[3], 'bans')
return {id, value}
"""
)
# KEYS: bans.
BANS_SCRIPT = _LIVE_BANS + "return live\n"
# KEYS: bans. ARGV: ban id, the moderation channel. Returns 1 if a ban in force was lifted.
LIFT_BAN_SCRIPT = (
    _LIVE_BANS
    + """
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('PUBLISH', ARGV[2], 'bans')
return 1
"""
)
# KEYS: locked set. ARGV: room, '1' to lock ('' to unlock), the moderation channel. Returns 1 if changed.
LOCK_SCRIPT = """
local changed
if ARGV[2] == '1' then
  changed = redis.call('SADD', KEYS[1], ARGV[1])
else
  changed = redis.call('SREM', KEYS[1], ARGV[1])
end
if changed == 1 then redis.call('PUBLISH', ARGV[3], 'locks') end
return changed
"""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_deletion(data: str) -> tuple[int, str]:
    """A deletion notice from a room's channel: the deletion's number in the room and the message id."""
    number, _, message_id = data[len(DELETION_MARK) :].partition(" ")
    return int(number), message_id


def _iso(microseconds: str) -> str:
    return ban_timestamp(_EPOCH + timedelta(microseconds=int(microseconds)))


def _ban(ban_id: str, value: str) -> Ban:
    created, expires, encoded = value.split(" ", 2)
    fields = json.loads(encoded)
    return Ban(
        ban_id,
        fields["h"],
        fields["a"],
        fields["r"],
        fields["why"],
        _iso(created),
        None if expires == "-" else _iso(expires),
    )


class RedisModeration:
    def __init__(self, redis: Redis, keys: RedisKeys) -> None:
        self._redis = redis
        self._keys = keys
        self._delete = redis.register_script(DELETE_SCRIPT)
        self._add_ban = redis.register_script(ADD_BAN_SCRIPT)
        self._bans = redis.register_script(BANS_SCRIPT)
        self._lift_ban = redis.register_script(LIFT_BAN_SCRIPT)
        self._lock = redis.register_script(LOCK_SCRIPT)

    async def delete_message(self, room: str, message_id: str) -> bool:
        key = parse_stream_id(message_id)
        if key in (ZERO_ID, MAX_ID):
            return False
        keys = [self._keys.stream(room), self._keys.deleted(room)]
        args = [format_stream_id(key), self._keys.channel(room)]
        if not await self._call("message not deleted", self._delete(keys=keys, args=args)):
            return False
        pipe = self._redis.pipeline(transaction=False)
        pipe.zincrby(self._keys.busiest, -1, room)
        pipe.zremrangebyscore(self._keys.busiest, "-inf", 0)  # a room with no message left is not listed
        await self._call("message deleted, its room's count not lowered", pipe.execute())
        return True

    async def add_ban(
        self, handle: str | None, address: str | None, room: str | None, seconds: float | None, reason: str
    ) -> Ban:
        check_ban(handle, address, seconds)
        fields = json.dumps({"h": handle, "a": address, "r": room, "why": reason}, ensure_ascii=False)
        args = ["" if seconds is None else repr(seconds), fields, self._keys.moderation_channel]
        reply = await self._call("ban not stored", self._add_ban(keys=[self._keys.bans, self._keys.ban_ids], args=args))
        return _ban(str(reply[0]), str(reply[1]))

    async def bans(self) -> list[Ban]:
        flat = await self._call("bans not read", self._bans(keys=[self._keys.bans]))
        found = [_ban(str(ban_id), str(value)) for ban_id, value in zip(flat[::2], flat[1::2], strict=True)]
        found.sort(key=lambda ban: int(ban.id))  # ids are issued in order: oldest first
        return found

    async def lift_ban(self, ban_id: str) -> bool:
        if not (ban_id.isascii() and ban_id.isdigit()):
            return False  # not an id this store issues
        args = [ban_id, self._keys.moderation_channel]
        return bool(await self._call("ban not lifted", self._lift_ban(keys=[self._keys.bans], args=args)))

    async def set_locked(self, room: str, locked: bool) -> None:
        args = [room, "1" if locked else "", self._keys.moderation_channel]
        await self._call("room lock not changed", self._lock(keys=[self._keys.locked], args=args))

    async def locked_rooms(self) -> frozenset[str]:
        rooms = await self._call("room locks not read", self._redis.smembers(self._keys.locked))
        return frozenset(cast(set[str], rooms))

    @staticmethod
    async def _call(failure: str, call: Any) -> Any:
        try:
            return await call
        except (RedisError, OSError) as exc:
            raise BackendUnavailable(f"{failure}: {exc}") from None

"""How rooms lays out its data in Redis: key names, the store script, and how entries become messages.

Every key and channel starts with one prefix, so several deployments (or test runs) can share a Redis
server; a room's keys carry its label as a hash tag (see ``RedisKeys``).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from redis.exceptions import ResponseError

from backends.base import HistoryPage, NewMessage, StoredMessage, StoreResult
from backends.errors import InvalidMessageId, MessageDeleted, QuotaExceeded

StreamId = tuple[int, int]
ZERO_ID: StreamId = (0, 0)

# A stream entry id as Redis issues it: milliseconds and a sequence number, both unsigned 64-bit,
# written without leading zeros. "0" is the position before every message.
_STREAM_ID = re.compile(r"(0|[1-9][0-9]{0,19})-(0|[1-9][0-9]{0,19})")
_MAX_PART = 2**64 - 1
MAX_ID: StreamId = (_MAX_PART, _MAX_PART)  # no entry lies after it


def parse_stream_id(message_id: str) -> StreamId:
    """The sortable key of a message id; ``InvalidMessageId`` for anything Redis would not issue."""
    if message_id == "0":
        return ZERO_ID
    match = _STREAM_ID.fullmatch(message_id)
    if match is None:
        raise InvalidMessageId(f"not a message id: {message_id!r}")
    ms, seq = int(match.group(1)), int(match.group(2))
    if ms > _MAX_PART or seq > _MAX_PART:
        raise InvalidMessageId(f"not a message id: {message_id!r}")
    return ms, seq


def format_stream_id(key: StreamId) -> str:
    return f"{key[0]}-{key[1]}"


class RedisKeys:
    """Names of everything rooms keeps in Redis, under one prefix.

    Every key of a room carries the room's label as a hash tag (``<prefix>{<label>}:stream``), so that
    all of a room's keys, and its channel, lie in one slot of a Redis Cluster and one script may touch
    them together. Labels hold neither ``:`` nor braces, so ``<prefix>{<room>}:cid:<client id>`` is
    unambiguous whatever the client id holds. Keys shared by the whole deployment have no room tag: the
    busiest and active rooms share the tag ``{rooms}`` (read together when rooms expire), the bans and
    their id counter the tag ``{moderation}``.
    """

    def __init__(self, prefix: str, db: int = 0) -> None:
        self.prefix = prefix
        self._db = db
        # Pub/sub: a notice after every change of bans or locks (see ``backends.redis.moderation``).
        self.moderation_channel = f"{prefix}db{db}:moderation"
        self.busiest = f"{prefix}{{rooms}}:busiest"  # sorted set: room -> messages ever stored
        self.counters = f"{prefix}counters"  # hash: totals of every process, for /metrics
        self.epoch = f"{prefix}epoch"  # a token that vanishes when Redis loses its data
        self.active = f"{prefix}{{rooms}}:active"  # sorted set: room -> its newest message's time (Unix seconds)
        self.bans = f"{prefix}{{moderation}}:bans"  # hash: ban id -> "<created us> <expires us or -> <json>"
        self.ban_ids = f"{prefix}{{moderation}}:ban-ids"  # the last ban id issued
        self.locked = f"{prefix}locked"  # set: the labels of the locked rooms
        self.layout = f"{prefix}layout"  # the layout's version, once keys of an earlier one were renamed

    def _room(self, room: str) -> str:
        return f"{self.prefix}{{{room}}}:"

    def stream(self, room: str) -> str:
        return f"{self._room(room)}stream"

    def channel(self, room: str) -> str:
        """Pub/sub channels are global to the server, not per database number, so the channel's name
        carries the database number: deployments kept apart by database number stay apart on pub/sub."""
        return f"{self._room(room)}db{self._db}:room"

    def room_of_channel(self, channel: str) -> str | None:
        head, _, rest = channel.partition("{")
        room, _, tail = rest.partition("}")
        if head != self.prefix or tail != f":db{self._db}:room":
            return None
        return room

    def deleted(self, room: str) -> str:
        """Sorted set: the ids of the room's messages a moderator deleted, each scored by its deletion's
        number in the room (1, 2, ...), so that its size is how many were deleted."""
        return f"{self._room(room)}deleted"

    def pruned(self, room: str) -> str:
        """The id of the newest message retention trimmed from the room's stream, set by the store script
        as it trims: a client that saw an older one missed messages, one that saw it (or later) did not."""
        return f"{self._room(room)}pruned"

    def room_epoch(self, room: str) -> str:
        """A token set when the room's stream is made: another token means the stream was lost (or
        removed) and made again since, and what was delivered from the earlier one is not history."""
        return f"{self._room(room)}epoch"

    def presence(self, room: str) -> str:
        """Hash: each process's share of the room's presence (see ``backends.redis.presence``)."""
        return f"{self._room(room)}presence"

    def client_id(self, room: str, client_id: str) -> str:
        return f"{self._room(room)}cid:{client_id}"

    def attempt(self, room: str, token: str) -> str:
        return f"{self._room(room)}attempt:{token}"

    def sent_by(self, block: str, widest: str) -> str:
        """Hash: the token bucket of the messages of a block of addresses (an IPv4 address, an IPv6
        /64, /56 or /48), shared by every process. Tagged with the ``widest`` block the sender counts
        in, so that all of a sender's buckets are in one cluster slot, for one script."""
        return f"{self._quota(block, widest)}messages"

    def rooms_made_by(self, block: str, widest: str) -> str:
        """Hash: the token bucket of the rooms a block of addresses may still create."""
        return f"{self._quota(block, widest)}rooms"

    def _quota(self, block: str, widest: str) -> str:
        return f"{self.prefix}quota:{{{widest}}}:" + ("" if block == widest else f"{block}:")


# Stores and publishes one message in a single atomic step, so every process sees the stream's order.
# It touches the room's keys only (one cluster slot); the sender's quota is settled around it by
# QUOTA_SCRIPT, and the deployment's figures (busiest rooms, active rooms, counters) after it.
#
# KEYS: stream, dedup key, the room's deleted set, the room's epoch, the room's newest pruned id
# ARGV: handle, message, timestamp, client id ('' for none), attempt token, dedup seconds,
#       retain (0 keeps all), trim chunk (how many past retain are trimmed at once), channel, the sender's
#       quota verdict ('' for no quota, QUOTA_OVER, QUOTA_NO_NEW_ROOM or QUOTA_OK), user ('' for none),
#       moderator ('1'; '' for not)
#
# The entry's fields: h (handle), m (message), t (timestamp), and only when set c (client id), u (user)
# and mod ('1'), so that an entry without them reads as before. The message is published as a JSON array
# [id, handle, message, timestamp, client id ('' for none)], which gains [..., user ('' for none),
# moderator (a boolean)] only when the message has either or made the stream, and then [..., epoch]
# when it made the stream (see ``published_message``).
#
# Retention trims the stream's head once it holds a chunk more than it keeps, and records the id of the
# newest entry it trimmed first (RedisKeys.pruned), in the same step: a replay tells from it whether a
# client missed anything. (XADD's MAXLEN trims without saying what went, and XINFO's max-deleted-entry-id
# follows XDEL only.)
#
# The room's epoch is set to the attempt token of the store that makes its stream (or finds the epoch
# missing; see RedisKeys.room_epoch), and the message that made the stream carries it, last.
# The dedup key is the client id's key, or for a message without one a short-lived key of this call's
# attempt token. Either way a retry of the same call (the reply was lost, redis-py sent it again) finds
# its own earlier store instead of storing twice. Its value is "<id> <attempt token>": a hit from
# another attempt is a client's resend (status 1), a hit from this attempt is our own retry (status 2).
# A hit on a message a moderator deleted stores nothing (status 5); on one pruned, the message is new.
# The quota verdict counts after the dedup key, so a resend is always answered: status 3, over its
# messages; status 4, over its new rooms (nothing stored).
# Returns {0, id, 1 if the message made the room, else 0} for a new message, {status, id, fields} for one
# stored before.
OVER_MESSAGE_QUOTA = 3
OVER_ROOM_QUOTA = 4
DELETED_BEFORE = 5
QUOTA_OVER, QUOTA_NO_NEW_ROOM, QUOTA_OK = "0", "1", "2"
STORE_SCRIPT = """
local existing = redis.call('GET', KEYS[2])
if existing then
  local space = string.find(existing, ' ', 1, true)
  local earlier = string.sub(existing, 1, space - 1)
  local entries = redis.call('XRANGE', KEYS[1], earlier, earlier)
  if #entries == 1 then
    if string.sub(existing, space + 1) == ARGV[5] then
      return {2, earlier, entries[1][2]}
    end
    return {1, earlier, entries[1][2]}
  end
  if redis.call('ZSCORE', KEYS[3], earlier) then return {5} end
end
local new_room = redis.call('EXISTS', KEYS[1]) == 0
if ARGV[10] == '0' then return {3} end
if ARGV[10] == '1' and new_room then return {4} end
local user, moderator = ARGV[11], ARGV[12]
local fields = {'h', ARGV[1], 'm', ARGV[2], 't', ARGV[3]}
if ARGV[4] ~= '' then
  fields[#fields + 1] = 'c'
  fields[#fields + 1] = ARGV[4]
end
if user ~= '' then
  fields[#fields + 1] = 'u'
  fields[#fields + 1] = user
end
if moderator ~= '' then
  fields[#fields + 1] = 'mod'
  fields[#fields + 1] = '1'
end
local id = redis.call('XADD', KEYS[1], '*', unpack(fields))
local retain = tonumber(ARGV[7])
if retain > 0 then
  local excess = redis.call('XLEN', KEYS[1]) - retain
  if excess >= tonumber(ARGV[8]) then
    local trimmed = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', excess)
    redis.call('SET', KEYS[5], trimmed[#trimmed][1])
    redis.call('XTRIM', KEYS[1], 'MAXLEN', retain)
  end
end
redis.call('SET', KEYS[2], id .. ' ' .. ARGV[5], 'EX', ARGV[6])
local published = {id, ARGV[1], ARGV[2], ARGV[3], ARGV[4]}
if user ~= '' or moderator ~= '' or new_room then
  published[6] = user
  published[7] = moderator ~= ''
end
if new_room then
  redis.call('SET', KEYS[4], ARGV[5])
  redis.call('DEL', KEYS[5])  -- of a stream lost (or removed) before this one
  published[8] = ARGV[5]
else
  redis.call('SET', KEYS[4], ARGV[5], 'NX')
end
redis.call('SPUBLISH', ARGV[9], cjson.encode(published))
if new_room then return {0, id, 1} end
return {0, id, 0}
"""

# A sender's token buckets (messages, and new rooms when limited) in each block of addresses it counts
# in (``AddressBlocks``: an IPv4 address; an IPv6 /64, /56 and /48), on Redis's clock so that every
# process agrees. Before a batch is stored, 'take' spends a message token of every block if each has
# one, and tells whether a new room would be allowed in every block (a verdict for STORE_SCRIPT);
# after it, 'refund' gives back the tokens of a message not stored, and 'room' spends a new-room token
# of every block for a room the message made. The new-room limit is thus checked before and charged
# after: messages of one address making rooms at the same moment on several processes can pass it by
# as many as are in flight.
#
# KEYS: per block, its message bucket then its new-room bucket (all in one slot: see RedisKeys.sent_by)
# ARGV: 'take', 'refund' or 'room'; messages per second; burst; new rooms per hour (0: no limit); then
#       per block, the factor of one address's allowance it may use
# Returns for 'take' a verdict (QUOTA_OVER, QUOTA_NO_NEW_ROOM, QUOTA_OK), else nothing.
QUOTA_SCRIPT = """
local function level(key, rate, burst, now)
  local state = redis.call('HMGET', key, 't', 'u')
  local tokens = tonumber(state[1])
  if not tokens then return burst end
  return math.min(burst, tokens + (now - tonumber(state[2])) * rate)
end
local function keep(key, tokens, rate, burst, now)
  redis.call('HSET', key, 't', tostring(tokens), 'u', tostring(now))
  redis.call('PEXPIRE', key, math.ceil(burst / rate * 1000) + 1000)
end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local rate, burst, rooms = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local blocks = #KEYS / 2
local function factor(block) return tonumber(ARGV[4 + block]) end
if ARGV[1] == 'take' then
  local levels = {}
  for block = 1, blocks do
    local f = factor(block)
    levels[block] = level(KEYS[2 * block - 1], rate * f, burst * f, now)
    if levels[block] < 1 then return '0' end
  end
  for block = 1, blocks do
    local f = factor(block)
    keep(KEYS[2 * block - 1], levels[block] - 1, rate * f, burst * f, now)
  end
  if rooms > 0 then
    for block = 1, blocks do
      local f = factor(block)
      if level(KEYS[2 * block], rooms * f / 3600, rooms * f, now) < 1 then return '1' end
    end
  end
  return '2'
elseif ARGV[1] == 'refund' then
  for block = 1, blocks do
    local f = factor(block)
    local key = KEYS[2 * block - 1]
    keep(key, math.min(burst * f, level(key, rate * f, burst * f, now) + 1), rate * f, burst * f, now)
  end
elseif rooms > 0 then
  for block = 1, blocks do
    local f = factor(block)
    local key = KEYS[2 * block]
    keep(key, level(key, rooms * f / 3600, rooms * f, now) - 1, rooms * f / 3600, rooms * f, now)
  end
end
return false
"""


def entry_message(room: str, entry_id: str, fields: dict[str, str]) -> StoredMessage:
    """A stream entry (as redis-py returns it) as a message; ``c``, ``u`` and ``mod`` only when set."""
    return StoredMessage(
        entry_id, room, fields["h"], fields["m"], fields["t"], fields.get("c"), fields.get("u"), "mod" in fields
    )


def flat_entry_message(room: str, entry_id: str, flat: list[str]) -> StoredMessage:
    """A stream entry as a Lua script returns it (field, value, field, value...)."""
    return entry_message(room, entry_id, dict(zip(flat[::2], flat[1::2], strict=True)))


def published_message(room: str, payload: str) -> tuple[StoredMessage, str | None]:
    """A message as the store script publishes it: a JSON array, client id '' for none, then user ('' for
    none) and moderator only when the message has either (an array of five, as earlier releases publish,
    has neither); and the room's new epoch if the message made the room's stream, else None."""
    entry_id, handle, message, timestamp, client_id, *sender = json.loads(payload)
    user = sender[0] if sender else ""
    moderator = len(sender) > 1 and sender[1] is True
    epoch = str(sender[2]) if len(sender) > 2 else None
    stored = StoredMessage(entry_id, room, handle, message, timestamp, client_id or None, user or None, moderator)
    return stored, epoch


def stream_facts(info: Any, deletions: int) -> tuple[StreamId, StreamId, bool]:
    """From ``XINFO STREAM`` (or an error for a missing stream) and the number of entries moderators
    deleted (the size of the room's deleted set, read in the same transaction): the last id ever issued,
    the first retained id, and whether entries were ever pruned from its head. Entries added and not in
    the stream were pruned or deleted, and only pruning is a gap."""
    if not isinstance(info, dict):
        return ZERO_ID, ZERO_ID, False
    first = info.get("first-entry")
    first_id = parse_stream_id(first[0]) if first else ZERO_ID
    pruned = int(info.get("entries-added", 0)) > int(info.get("length", 0)) + deletions
    return parse_stream_id(info["last-generated-id"]), first_id, pruned


def is_missing_stream(error: Exception) -> bool:
    """Whether a stream command failed only because the room has no stream yet."""
    return isinstance(error, ResponseError) and "no such key" in str(error).lower()


def unix_seconds(timestamp: str) -> str:
    """A message's ISO 8601 timestamp as the score of its room in the ``active`` set."""
    return repr(datetime.fromisoformat(timestamp).timestamp())


def store_result(message: NewMessage, reply: list[Any]) -> StoreResult | QuotaExceeded | MessageDeleted:
    status = int(reply[0])
    if status == DELETED_BEFORE:
        return MessageDeleted("a moderator deleted the message with this client_id; it is not stored again")
    if status == OVER_MESSAGE_QUOTA:
        return QuotaExceeded("too many messages from this address; slow down")
    if status == OVER_ROOM_QUOTA:
        return QuotaExceeded("too many new rooms from this address")
    entry_id = str(reply[1])
    if status == 0:
        return StoreResult(
            StoredMessage(
                entry_id,
                message.room,
                message.handle,
                message.message,
                message.timestamp,
                message.client_id,
                message.user,
                message.moderator,
            )
        )
    return StoreResult(flat_entry_message(message.room, entry_id, reply[2]), duplicate=status == 1)


def page_of_entries(room: str, entries: Any, limit: int, newest_first: bool = False) -> HistoryPage:
    """Entries read with one more than ``limit`` as a page, oldest first (``newest_first``: read with
    XREVRANGE, so the extra entry is the oldest)."""
    if not isinstance(entries, list):  # the stream does not exist
        return HistoryPage([], False)
    if newest_first:
        entries = entries[::-1]
    has_more = len(entries) > limit
    if has_more:
        entries = entries[1:] if newest_first else entries[:limit]
    return HistoryPage([entry_message(room, entry_id, fields) for entry_id, fields in entries], has_more)

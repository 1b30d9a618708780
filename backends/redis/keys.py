"""How rooms lays out its data in Redis: key names, and how entries become messages.

Every key and channel starts with one prefix, so several deployments (or test runs) can share a Redis
server; a room's keys carry its label as a hash tag (see ``RedisKeys``).
"""

from __future__ import annotations

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


# What store.lua answers for a message it did not store as new, and the quota verdicts it takes (quota.lua).
OVER_MESSAGE_QUOTA = 3
OVER_ROOM_QUOTA = 4
DELETED_BEFORE = 5
QUOTA_OVER, QUOTA_NO_NEW_ROOM, QUOTA_OK = "0", "1", "2"


def entry_message(room: str, entry_id: str, fields: dict[str, str]) -> StoredMessage:
    """A stream entry (as redis-py returns it) as a message; ``c``, ``u`` and ``mod`` only when set."""
    return StoredMessage(
        entry_id, room, fields["h"], fields["m"], fields["t"], fields.get("c"), fields.get("u"), "mod" in fields
    )


def flat_entry_message(room: str, entry_id: str, flat: list[str]) -> StoredMessage:
    """A stream entry as a Lua script returns it (field, value, field, value...)."""
    return entry_message(room, entry_id, dict(zip(flat[::2], flat[1::2], strict=True)))


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

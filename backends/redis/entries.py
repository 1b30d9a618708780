"""A room's stream entries: their ids (``<milliseconds>-<sequence>``, as Redis issues them) and how
they read as messages and pages, and what the stream's facts say of what it lost."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from redis.exceptions import ResponseError

from backends.base import StoredMessage
from backends.errors import InvalidMessageId

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


def entry_message(room: str, entry_id: str, fields: dict[str, str]) -> StoredMessage:
    """A stream entry (as redis-py returns it) as a message as it was stored; ``c``, ``u``, ``mod``, ``re``
    and ``a`` only when set."""
    return StoredMessage(
        entry_id,
        room,
        fields["h"],
        fields["m"],
        fields["t"],
        fields.get("c"),
        fields.get("u"),
        "mod" in fields,
        fields.get("re"),
        fields.get("a"),
    )


def flat_entry_message(room: str, entry_id: str, flat: list[str]) -> StoredMessage:
    """A stream entry as a Lua script returns it (field, value, field, value...)."""
    return entry_message(room, entry_id, dict(zip(flat[::2], flat[1::2], strict=True)))


def as_it_stands(message: StoredMessage, state: str | None) -> StoredMessage:
    """``message`` with its changes (``RedisKeys.current``: its text and when edited, its reactions), if any."""
    if not state:
        return message
    current = json.loads(state)
    reactions = tuple((str(emoji), int(count)) for emoji, count in current.get("r") or ())
    return message._replace(message=current.get("m", message.message), edited=current.get("e"), reactions=reactions)


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

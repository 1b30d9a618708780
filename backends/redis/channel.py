"""What travels on a room's pub/sub channel (``RedisKeys.channel``) and on the moderation channel,
encoded and decoded here; a payload's kind is its first character.

On a room's channel:

* ``[`` a stored message, published by ``lua/store.lua`` as a JSON array: ``[id, handle, message,
  timestamp, client id ('' for none)]``, then ``user ('' for none), moderator (a boolean)`` only when
  the message has either or made the room's stream, then the room's new epoch when it made the stream
  (an array of five, as earlier releases publish, has neither);
* ``-<n> <id>`` a moderator deleted message ``id``, the room's ``n``-th deletion (``lua/delete.lua``);
* ``!<origin> <signal>`` an ephemeral signal (someone is typing), relayed by a process;
* ``?<origin>`` a process's share of the room's presence changed or expired (``lua/presence.lua``).

``origin`` names the process that sent it, so that none hears its own.

On the moderation channel (``RedisKeys.moderation_channel``), ``bans`` or ``locks`` after a change of
either (``lua/add_ban.lua``, ``lua/lift_ban.lua``, ``lua/lock.lua``): every notice means "read them again".
"""

from __future__ import annotations

import json
from typing import NamedTuple

from backends.base import StoredMessage

MESSAGE_MARK = "["
DELETION_MARK = "-"
SIGNAL_MARK = "!"
PRESENCE_MARK = "?"


class Published(NamedTuple):
    """A stored message, and the room's new epoch if it made the room's stream (else None)."""

    message: StoredMessage
    epoch: str | None


class Deletion(NamedTuple):
    number: int  # the deletion's number in the room: 1, 2, ...
    message_id: str


class Signal(NamedTuple):
    origin: str
    signal: str


class PresenceChange(NamedTuple):
    origin: str


Payload = Published | Deletion | Signal | PresenceChange


def decode(room: str, data: str) -> Payload:
    """A payload from ``room``'s channel."""
    mark = data[:1]
    if mark == MESSAGE_MARK:
        return Published(*published_message(room, data))
    if mark == DELETION_MARK:
        number, _, message_id = data[1:].partition(" ")
        return Deletion(int(number), message_id)
    origin, _, signal = data[1:].partition(" ")
    if mark == SIGNAL_MARK:
        return Signal(origin, signal)
    return PresenceChange(origin)


def published_message(room: str, payload: str) -> tuple[StoredMessage, str | None]:
    """A message as the store script publishes it, and the room's new epoch if it made the stream."""
    entry_id, handle, message, timestamp, client_id, *sender = json.loads(payload)
    user = sender[0] if sender else ""
    moderator = len(sender) > 1 and sender[1] is True
    epoch = str(sender[2]) if len(sender) > 2 else None
    stored = StoredMessage(entry_id, room, handle, message, timestamp, client_id or None, user or None, moderator)
    return stored, epoch


def encode_signal(origin: str, signal: str) -> str:
    return f"{SIGNAL_MARK}{origin} {signal}"

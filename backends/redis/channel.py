"""What travels on a room's pub/sub channel (``RedisKeys.channel``) and on the moderation channel,
encoded and decoded here; a payload's kind is its first character.

On a room's channel:

* ``[`` a stored message, published by ``lua/store.lua`` as a JSON array: ``[id, handle, message,
  timestamp, client id ('' for none)]``, then ``user ('' for none), moderator (a boolean)`` only when
  the message has either or made the room's stream or replies or has an author, then the room's new
  epoch when it made the stream (null when it did not, but replies or has an author), then ``reply to
  ('' for none), author ('' for none)`` when it replies or has an author (an array of five, as earlier
  releases publish, has none of these);
* ``~`` a change to a message (``lua/log.lua``), a JSON array: ``[at, id, kind, text ('' for none), edited
  ('' for none), [[emoji, count]...] (or an empty object for none)]``;
* ``!<origin> <signal>`` an ephemeral signal (someone is typing), relayed by a process;
* ``?<origin>`` a process's share of the room's presence changed or expired (``lua/presence.lua``).

``origin`` names the process that sent it, so that none hears its own.

On the moderation channel (``RedisKeys.moderation_channel``), ``bans`` or ``locks`` after a change of
either (``lua/add_ban.lua``, ``lua/lift_ban.lua``, ``lua/lock.lua``): every notice means "read them again".
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from backends.base import StoredMessage
from backends.changes import ChangeKind, MessageChange

MESSAGE_MARK = "["
CHANGE_MARK = "~"
SIGNAL_MARK = "!"
PRESENCE_MARK = "?"


class Published(NamedTuple):
    """A stored message, and the room's new epoch if it made the room's stream (else None)."""

    message: StoredMessage
    epoch: str | None


class Signal(NamedTuple):
    origin: str
    signal: str


class PresenceChange(NamedTuple):
    origin: str


Payload = Published | MessageChange | Signal | PresenceChange


def decode(room: str, data: str) -> Payload:
    """A payload from ``room``'s channel."""
    mark = data[:1]
    if mark == MESSAGE_MARK:
        return Published(*published_message(room, data))
    if mark == CHANGE_MARK:
        at, message_id, kind, text, edited, reactions = json.loads(data[1:])
        return logged_change(room, at, message_id, kind, text, edited, reactions or ())
    origin, _, signal = data[1:].partition(" ")
    if mark == SIGNAL_MARK:
        return Signal(origin, signal)
    return PresenceChange(origin)


def published_message(room: str, payload: str) -> tuple[StoredMessage, str | None]:
    """A message as the store script publishes it, and the room's new epoch if it made the stream."""
    entry_id, handle, message, timestamp, client_id, *sender = json.loads(payload)
    user = sender[0] if sender else ""
    moderator = len(sender) > 1 and sender[1] is True
    epoch = str(sender[2]) if len(sender) > 2 and sender[2] is not None else None
    reply_to, author = (sender[3] or None, sender[4] or None) if len(sender) > 4 else (None, None)
    stored = StoredMessage(
        entry_id, room, handle, message, timestamp, client_id or None, user or None, moderator, reply_to, author
    )
    return stored, epoch


def logged_change(
    room: str, at: str, message_id: str, kind: str, text: str, edited: str, reactions: Iterable[Sequence[Any]]
) -> MessageChange:
    """A change as ``lua/log.lua`` keeps and publishes it."""
    change_kind = ChangeKind(kind)
    if change_kind is ChangeKind.EDIT:
        return MessageChange(room, message_id, at, change_kind, message=text, edited=edited)
    counts = tuple((str(emoji), int(count)) for emoji, count in reactions)
    return MessageChange(room, message_id, at, change_kind, reactions=counts)


def encode_signal(origin: str, signal: str) -> str:
    return f"{SIGNAL_MARK}{origin} {signal}"


def stream_change(room: str, at: str, fields: dict[str, str]) -> MessageChange:
    """An entry of the room's changes stream (``RedisKeys.changes``, kept by ``lua/log.lua``) as a change."""
    reactions = json.loads(fields["r"]) if "r" in fields else ()
    return logged_change(room, at, fields["i"], fields["k"], fields.get("m", ""), fields.get("e", ""), reactions or ())

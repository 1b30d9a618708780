"""The wire format of changes to messages (docs/protocol.md, "Messages that change"): the edit, delete
and react frames a client sends, and the edit, delete and reactions frames the server sends.

Every other frame is ``rooms.protocol``'s; ``decode_frame`` reads a socket's frame of either kind.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import emoji

from backends.changes import ChangeKind, MessageChange
from rooms.protocol import (
    ClientFrame,
    ErrorCode,
    Feature,
    Limits,
    ProtocolError,
    check_message_text,
    decode_client_data,
    encode,
    json_type,
    key_author,
    load_json,
    validate_client_object,
)

# The feature a socket asks for to hear each kind of change.
CHANGE_FEATURES = {
    ChangeKind.EDIT: Feature.EDITS,
    ChangeKind.DELETE: Feature.DELETES,
    ChangeKind.REACTIONS: Feature.REACTIONS,
}
CHANGE_FEATURE_SET = frozenset(CHANGE_FEATURES.values())
MAX_EMOJI_CHARS = 32  # longer than any RGI emoji (a family of four with skin tones is 25)


class Edit(NamedTuple):
    """Give the message ``id`` the text ``message``; ``author``: the hash of the author key it came with."""

    id: str
    message: str
    author: str | None


class Delete(NamedTuple):
    """Delete the message ``id``, as its author."""

    id: str
    author: str | None


class React(NamedTuple):
    """Add (``on``) or take back a reaction ``emoji`` to the message ``id``."""

    id: str
    emoji: str
    on: bool


ChangeFrame = Edit | Delete | React


def decode_frame(frame: str | bytes, room: str, limits: Limits, sender: str = "") -> ClientFrame | ChangeFrame:
    """A socket's frame: a change (edit, delete, react) or any frame ``rooms.protocol`` reads."""
    if isinstance(frame, bytes):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "binary frames are not accepted; send JSON text")
    data = load_json(frame)
    if isinstance(data, dict):
        kind = data.get("type")
        if kind is None:  # a message, as most frames are (the seed's client names no type)
            return validate_client_object(data, room, limits, sender)
        if kind == "edit":
            return decode_edit(data, limits, data.get("id"))
        if kind == "delete":
            return Delete(_message_id(data.get("id")), _author(data))
        if kind == "react":
            return _decode_react(data)
    return decode_client_data(data, room, limits, sender)


def decode_edit(data: dict[str, Any], limits: Limits, message_id: Any) -> Edit:
    """An edit of the message ``message_id``: from a socket's frame, or a PATCH's body and path."""
    text = data.get("message")
    if not isinstance(text, str):
        what = "is missing" if text is None else f"must be a string, got {json_type(text)}"
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, f"field 'message' {what}")
    return Edit(_message_id(message_id), check_message_text(text, limits.max_message_chars), _author(data))


def _decode_react(data: dict[str, Any]) -> React:
    symbol, on = data.get("emoji"), data.get("on", True)
    if not isinstance(symbol, str):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, f"field 'emoji' must be a string, got {json_type(symbol)}")
    if len(symbol) > MAX_EMOJI_CHARS or not emoji.is_emoji(symbol):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "field 'emoji' must be one emoji")
    if not isinstance(on, bool):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, f"field 'on' must be a boolean, got {json_type(on)}")
    return React(_message_id(data.get("id")), symbol, on)


def _message_id(value: Any) -> str:
    if not isinstance(value, str):
        what = "is missing" if value is None else f"must be a string, got {json_type(value)}"
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, f"field 'id' {what}")
    return value


def _author(data: dict[str, Any]) -> str | None:
    key = data.get("author_key")
    return None if key is None else key_author(key)


def encode_change(change: MessageChange) -> str:
    """The frame of a change to a message, for the sockets that asked for its feature."""
    wire: dict[str, Any] = {"type": change.kind.value, "id": change.id, "at": change.at}
    if change.kind is ChangeKind.EDIT:
        wire["message"] = change.message
        wire["edited"] = change.edited
    elif change.kind is ChangeKind.REACTIONS:
        wire["reactions"] = dict(change.reactions)
    return encode(wire)

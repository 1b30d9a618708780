"""The wire format: decoding and validating what clients send, encoding what the server sends, and the
WebSocket frames it goes out in (built once, written to every socket of a room).

Everything docs/protocol.md says about frames lives here (the JSON of a message, the error codes, the close
codes), so the handlers stay thin and the HTTP POST and the WebSocket accept exactly the same messages.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import unicodedata
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any, NamedTuple

from backends.base import MAX_PRESENCE_HANDLES, Ban, NewMessage, RoomPresence, StoredMessage, utc_timestamp
from rooms.lookalikes import DEFAULT_IGNORABLE, strip_white_space

LABEL_PATTERN = r"[A-Za-z0-9_-]{1,50}"
_LABEL = re.compile(LABEL_PATTERN)
RESERVED_LABELS = frozenset({"new", "api", "chat", "static", "healthz", "metrics", "admin"})
_FIELDS = ("handle", "message")
_AUTHOR_KEY = re.compile(r"[A-Za-z0-9_-]{22,64}")
# Surrogates cannot be encoded to UTF-8 and NUL is refused by PostgreSQL: refusing both here gives
# every backend the same answer.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_ASCII_INVISIBLE = "".join(map(chr, range(0x21))) + "\x7f"  # white space and controls
_ASCII_CONTROL = re.compile("[\x00-\x1f\x7f]")
# Letters (or symbols) that draw nothing: a text of them alone looks empty, and a handle of them is no name.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
# Scripts whose letters look alike ("а" is Cyrillic): one handle may use one of them, so that "аdmin" is
# not taken for "admin". Other scripts mix freely (Japanese writes kanji and kana together).
_LOOKALIKE_SCRIPTS = frozenset({"LATIN", "CYRILLIC", "GREEK"})


def is_valid_label(label: str) -> bool:
    return _LABEL.fullmatch(label) is not None and label not in RESERVED_LABELS


class ErrorCode(StrEnum):
    """The ``code`` of an error frame (docs/protocol.md, "Error codes")."""

    INVALID_JSON = "invalid_json"
    INVALID_MESSAGE = "invalid_message"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    FORBIDDEN = "forbidden"  # a moderator's decision stands in the way, or a change by someone not the author
    NOT_FOUND = "not_found"  # a change to a message its room does not hold


class Feature(StrEnum):
    """What a socket may ask for with ``?features=`` beyond messages (docs/protocol.md, "Frames from the server")."""

    PRESENCE = "presence"
    TYPING = "typing"
    DELETES = "deletes"
    EDITS = "edits"
    REACTIONS = "reactions"


_FEATURES = {feature.value: feature for feature in Feature}


def parse_features(requested: str) -> frozenset[Feature]:
    """The features a comma list names; unknown names are ignored, so newer clients work with this server."""
    return frozenset(_FEATURES[name] for name in requested.split(",") if name in _FEATURES)


class CloseCode(IntEnum):
    """The WebSocket close codes the server sends."""

    GOING_AWAY = 1001  # the server is shutting down
    PROTOCOL_ERROR = 1002  # a frame RFC 6455 forbids (a client's frame not masked)
    POLICY = 1008  # a sender that keeps flooding
    TOO_BIG = 1009  # a frame over limits.max_frame_bytes
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013  # storage lost, or a reader too slow to keep up


class ProtocolError(Exception):
    """A client sent something the contract does not accept; ``code`` says what, ``reason`` explains."""

    def __init__(self, code: ErrorCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Limits:
    max_handle_chars: int = 32
    max_message_chars: int = 4000


class Hello(NamedTuple):
    """A socket announces (or changes) the handle it goes by in the room's presence."""

    handle: str


class Typing(NamedTuple):
    """A socket's user is typing; ``handle`` when the frame names one, else the announced one is meant."""

    handle: str | None


ClientFrame = NewMessage | Hello | Typing


def decode_client_frame(frame: str | bytes, room: str, limits: Limits, sender: str = "") -> ClientFrame:
    """Parse one text frame into a message for ``room`` (stamped now), a ``hello`` or a ``typing``, or
    raise :class:`ProtocolError`."""
    if isinstance(frame, bytes):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "binary frames are not accepted; send JSON text")
    return decode_client_data(load_json(frame), room, limits, sender)


def decode_client_data(data: Any, room: str, limits: Limits, sender: str = "") -> ClientFrame:
    """``decode_client_frame`` of a frame's JSON, decoded already."""
    if isinstance(data, dict):
        kind = data.get("type")
        if kind == "hello":
            if "handle" not in data:
                raise ProtocolError(ErrorCode.INVALID_MESSAGE, "field 'handle' is missing")
            return Hello(_check_handle_field(data["handle"], limits.max_handle_chars))
        if kind == "typing":
            handle = data.get("handle")
            return Typing(None if handle is None else _check_handle_field(handle, limits.max_handle_chars))
    return validate_client_object(data, room, limits, sender)


def load_json(text: str | bytes) -> Any:
    """Decode JSON from a client; anything that is not (nesting too deep included) is ``invalid_json``."""
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ProtocolError(ErrorCode.INVALID_JSON, f"not valid JSON: {exc}") from None
    except RecursionError:
        raise ProtocolError(ErrorCode.INVALID_JSON, "not valid JSON here: nested too deeply") from None


def validate_client_object(data: Any, room: str, limits: Limits, sender: str = "") -> NewMessage:
    """Check a decoded JSON value against the contract (shared by the socket and the HTTP API)."""
    if not isinstance(data, dict):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, f"expected a JSON object, got {_json_type(data)}")
    kind = data.get("type", "message")
    if kind != "message":
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, f"field 'type': unknown message type {kind!r}")
    for name in _FIELDS:
        if name not in data:
            raise ProtocolError(ErrorCode.INVALID_MESSAGE, f"field '{name}' is missing")
        if not isinstance(data[name], str):
            raise ProtocolError(
                ErrorCode.INVALID_MESSAGE, f"field '{name}' must be a string, got {_json_type(data[name])}"
            )
    handle = _check_handle(data["handle"], limits.max_handle_chars)
    message = _check_text("message", data["message"], limits.max_message_chars)
    client_id = data.get("client_id")
    if client_id is not None:
        if not isinstance(client_id, str):
            raise ProtocolError(
                ErrorCode.INVALID_MESSAGE, f"field 'client_id' must be a string, got {_json_type(client_id)}"
            )
        if not 1 <= len(client_id) <= 64:
            raise ProtocolError(ErrorCode.INVALID_MESSAGE, "field 'client_id' must be 1 to 64 characters")
        if _UNSTORABLE.search(client_id) or any(unicodedata.category(char) == "Cc" for char in client_id):
            raise ProtocolError(ErrorCode.INVALID_MESSAGE, "field 'client_id' must not contain control characters")
    reply_to = data.get("reply_to")
    if reply_to is not None and not isinstance(reply_to, str):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, f"field 'reply_to' must be a string, got {_json_type(reply_to)}")
    author = key_author(data["author_key"]) if data.get("author_key") is not None else None
    return NewMessage(room, handle, message, client_id, utc_timestamp(), sender, reply_to=reply_to, author=author)


def key_author(author_key: Any) -> str:
    """The ``author`` a message sent with ``author_key`` keeps: a hash of the key, never the key itself
    (the key is 22 to 64 random characters, so one fast hash is as hard to reverse as it is to guess)."""
    if not isinstance(author_key, str):
        raise ProtocolError(
            ErrorCode.INVALID_MESSAGE, f"field 'author_key' must be a string, got {_json_type(author_key)}"
        )
    if _AUTHOR_KEY.fullmatch(author_key) is None:
        raise ProtocolError(
            ErrorCode.INVALID_MESSAGE, "field 'author_key' must be 22 to 64 characters of A-Z a-z 0-9 _ -"
        )
    return "key:" + hashlib.sha256(author_key.encode("ascii")).hexdigest()


def user_author(user: str) -> str:
    """The ``author`` a message sent with a token of ``sub`` ``user`` keeps."""
    return "sub:" + user


def check_handle(handle: str, max_chars: int) -> str:
    """A handle as stored (NFC, without the white space around it), or ``ProtocolError``: what a message's
    handle must be, for a handle that comes from elsewhere (a token's name, a ban)."""
    return _check_handle(handle, max_chars)


def check_message_text(text: str, max_chars: int) -> str:
    """A message's text as stored, or ``ProtocolError``: for a text that comes in another frame (an edit)."""
    return _check_text("message", text, max_chars)


def _check_handle_field(value: Any, max_chars: int) -> str:
    if not isinstance(value, str):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, f"field 'handle' must be a string, got {_json_type(value)}")
    return _check_handle(value, max_chars)


def _check_text(name: str, value: str, max_chars: int) -> str:
    """The text as stored, in NFC (so that texts that look the same are the same), or ``ProtocolError``;
    its length is counted in NFC too."""
    if value.isascii():  # most text: NFC already, and only white space and controls draw nothing
        visible = bool(value.strip(_ASCII_INVISIBLE))
        unstorable = "\x00" in value
    else:
        value = unicodedata.normalize("NFC", value)
        visible = any(_is_visible(char) for char in value)
        unstorable = _UNSTORABLE.search(value) is not None
    if not visible:
        raise ProtocolError(
            ErrorCode.INVALID_MESSAGE, f"field '{name}' must not be empty: it needs a visible character"
        )
    if len(value) > max_chars:
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, f"field '{name}' is longer than {max_chars} characters")
    if unstorable:
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, f"field '{name}' contains NUL or an unpaired surrogate")
    return value


def _check_handle(handle: str, max_chars: int) -> str:
    """A handle is also a name others go by: no controls, and nothing that makes one look like another
    (bidi overrides reversing it, characters that draw nothing, a Cyrillic letter among Latin ones)."""
    handle = _check_text("handle", strip_white_space(handle), max_chars)
    if handle.isascii():
        if _ASCII_CONTROL.search(handle):
            raise _control_in_handle()
        return handle
    scripts: set[str] = set()
    for char in handle:
        category = unicodedata.category(char)
        if category == "Cc":
            raise _control_in_handle()
        if category == "Cf" or DEFAULT_IGNORABLE.match(char):
            raise ProtocolError(
                ErrorCode.INVALID_MESSAGE,
                "field 'handle' must not contain format characters or other characters that draw nothing "
                f"(bidi controls, zero-width characters, variation selectors, fillers): U+{ord(char):04X}",
            )
        if category[0] == "L":
            script = _script_of(char)
            if script in _LOOKALIKE_SCRIPTS:
                scripts.add(script)
    if len(scripts) > 1:
        named = " and ".join(sorted(script.title() for script in scripts))
        raise ProtocolError(
            ErrorCode.INVALID_MESSAGE, f"field 'handle' mixes scripts ({named}) whose letters look alike; use one"
        )
    return handle


def _script_of(letter: str) -> str:
    """The script a letter's name starts with; a letter named otherwise ("ª", "ʰ": an ordinal, a modifier)
    is taken by the letter it stands for (its compatibility decomposition)."""
    script = unicodedata.name(letter, "").partition(" ")[0]
    if script not in _LOOKALIKE_SCRIPTS:
        base = unicodedata.normalize("NFKD", letter)[:1]
        if base and base != letter:
            script = unicodedata.name(base, "").partition(" ")[0]
    return script


def _is_visible(char: str) -> bool:
    return unicodedata.category(char)[0] not in "ZCM" and char not in _BLANK_LETTERS


def _control_in_handle() -> ProtocolError:
    return ProtocolError(ErrorCode.INVALID_MESSAGE, "field 'handle' must not contain control characters")


def json_type(value: Any) -> str:
    """How an error names a JSON value's type."""
    return _json_type(value)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


# json.dumps with options builds a new encoder at every call; one made here serves every message.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def encode(payload: dict[str, Any]) -> str:
    """Compact JSON, UTF-8 as is: the one encoding every reply and broadcast uses."""
    return _ENCODER.encode(payload)


def message_payload(message: StoredMessage) -> dict[str, Any]:
    """The JSON object docs/protocol.md gives for a message (``client_id`` only when the sender set one;
    ``user`` only when a token named the sender, ``moderator`` only when true; ``reply_to``, ``edited`` and
    ``reactions`` only when it has them: a message without them reads exactly as it did before). Its
    ``author`` is never sent."""
    wire: dict[str, Any] = {
        "type": "message",
        "id": message.id,
        "room": message.room,
        "handle": message.handle,
        "message": message.message,
        "timestamp": message.timestamp,
    }
    if message.client_id is not None:
        wire["client_id"] = message.client_id
    if message.user is not None:
        wire["user"] = message.user
    if message.moderator:
        wire["moderator"] = True
    if message.reply_to is not None:
        wire["reply_to"] = message.reply_to
    if message.edited is not None:
        wire["edited"] = message.edited
    if message.reactions:
        wire["reactions"] = dict(message.reactions)
    return wire


def encode_message(message: StoredMessage) -> str:
    return _ENCODER.encode(message_payload(message))


def encode_error(code: ErrorCode, reason: str) -> str:
    return _ENCODER.encode({"type": "error", "code": code, "error": reason})


def encode_presence(presence: RoomPresence) -> str:
    return _ENCODER.encode(
        {"type": "presence", "online": presence.online, "handles": list(presence.handles[:MAX_PRESENCE_HANDLES])}
    )


def encode_typing(handle: str) -> str:
    return _ENCODER.encode({"type": "typing", "handle": handle})


def ban_payload(ban: Ban) -> dict[str, Any]:
    """A ban as the moderation API shows it: every field, ``null`` where it has none."""
    return {
        "id": ban.id,
        "handle": ban.handle,
        "address": ban.address,
        "room": ban.room,
        "reason": ban.reason,
        "created": ban.created,
        "expires": ban.expires,
    }


GAP = encode({"type": "gap"})

# Server-to-client WebSocket frames (RFC 6455 5.2): never masked, so one frame's bytes serve every client.
PING_FRAME = b"\x89\x00"  # FIN, opcode 9 (ping), unmasked, no payload
# Compiled here, not by ``struct.pack("fmt")``: that fills struct's cache of formats at a frame's first use,
# often while a big room is full, and the cached objects then keep a crowd's memory arena from going back.
HEADER_SHORT = struct.Struct("!BB")
HEADER_16 = struct.Struct("!BBH")
HEADER_64 = struct.Struct("!BBQ")


def text_frame(payload: str) -> bytes:
    """A complete unmasked, uncompressed WebSocket text frame (RFC 6455 5.2)."""
    data = payload.encode("utf-8")
    length = len(data)
    if length < 126:
        header = HEADER_SHORT.pack(0x81, length)
    elif length <= 0xFFFF:
        header = HEADER_16.pack(0x81, 126, length)
    else:
        header = HEADER_64.pack(0x81, 127, length)
    return header + data

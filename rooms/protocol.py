"""The wire format: decoding and validating what clients send, encoding what the server sends.

Everything PROTOCOL.md says about frames lives here (the JSON of a message, the error codes, the close
codes), so the handlers stay thin and the HTTP POST and the WebSocket accept exactly the same messages.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

from backends.base import NewMessage, StoredMessage, utc_timestamp

LABEL_PATTERN = r"[A-Za-z0-9_-]{1,50}"
_LABEL = re.compile(LABEL_PATTERN)
RESERVED_LABELS = frozenset({"new", "api", "chat", "static", "healthz", "metrics", "admin"})
_FIELDS = ("handle", "message")
# Surrogates cannot be encoded to UTF-8 and NUL is refused by PostgreSQL: refusing both here gives
# every backend the same answer.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def is_valid_label(label: str) -> bool:
    return _LABEL.fullmatch(label) is not None and label not in RESERVED_LABELS


class ErrorCode(StrEnum):
    """The ``code`` of an error frame (PROTOCOL.md, "Bad input")."""

    INVALID_JSON = "invalid_json"
    INVALID_MESSAGE = "invalid_message"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"


class CloseCode(IntEnum):
    """The WebSocket close codes the server sends."""

    GOING_AWAY = 1001  # the server is shutting down
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


def decode_client_frame(frame: str | bytes, room: str, limits: Limits, sender: str = "") -> NewMessage:
    """Parse one text frame into a message for ``room``, stamped now, or raise :class:`ProtocolError`."""
    if isinstance(frame, bytes):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "binary frames are not accepted; send JSON text")
    return validate_client_object(load_json(frame), room, limits, sender)


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
    handle: str = data["handle"]
    message: str = data["message"]
    _check_text("handle", handle, limits.max_handle_chars)
    _check_text("message", message, limits.max_message_chars)
    if any(unicodedata.category(char) == "Cc" for char in handle):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "field 'handle' must not contain control characters")
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
    return NewMessage(room, handle, message, client_id, utc_timestamp(), sender)


def _check_text(name: str, value: str, max_chars: int) -> None:
    if not value.strip():
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, f"field '{name}' must not be empty")
    if len(value) > max_chars:
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, f"field '{name}' is longer than {max_chars} characters")
    if _UNSTORABLE.search(value):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, f"field '{name}' contains NUL or an unpaired surrogate")


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
    """The JSON object PROTOCOL.md sends for a message (``client_id`` only when the sender set one)."""
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
    return wire


def encode_message(message: StoredMessage) -> str:
    return _ENCODER.encode(message_payload(message))


def encode_error(code: ErrorCode, reason: str) -> str:
    return _ENCODER.encode({"type": "error", "code": code, "error": reason})


GAP = encode({"type": "gap"})

"""The wire format: decoding and validating what clients send, encoding what the server sends.

Everything PROTOCOL.md says about frames lives here, so the handlers stay thin and the HTTP POST and
the WebSocket accept exactly the same messages.
"""

from __future__ import annotations

import json
import re
import struct
import unicodedata
from dataclasses import dataclass
from typing import Any, NamedTuple

from rooms.errors import ProtocolError

LABEL_PATTERN = r"[A-Za-z0-9_-]{1,50}"
_LABEL = re.compile(LABEL_PATTERN)
RESERVED_LABELS = frozenset({"new", "api", "chat", "static", "healthz", "metrics"})
_FIELDS = ("handle", "message")
# Surrogates cannot be encoded to UTF-8 and NUL is refused by PostgreSQL: refusing both here gives
# every backend the same answer.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def is_valid_label(label: str) -> bool:
    return _LABEL.fullmatch(label) is not None and label not in RESERVED_LABELS


@dataclass(frozen=True, slots=True)
class Limits:
    max_handle_chars: int = 32
    max_message_chars: int = 4000


class ClientMessage(NamedTuple):
    handle: str
    message: str
    client_id: str | None = None


def decode_client_frame(frame: str | bytes, limits: Limits) -> ClientMessage:
    """Parse one text frame into a :class:`ClientMessage` or raise :class:`ProtocolError`."""
    if isinstance(frame, bytes):
        raise ProtocolError("invalid_message", "binary frames are not accepted; send JSON text")
    return validate_client_object(load_json(frame), limits)


def load_json(text: str | bytes) -> Any:
    """Decode JSON from a client; anything that is not (nesting too deep included) is ``invalid_json``."""
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ProtocolError("invalid_json", f"not valid JSON: {exc}") from None
    except RecursionError:
        raise ProtocolError("invalid_json", "not valid JSON here: nested too deeply") from None


def validate_client_object(data: Any, limits: Limits) -> ClientMessage:
    """Check a decoded JSON value against the contract (shared by the socket and the HTTP API)."""
    if not isinstance(data, dict):
        raise ProtocolError("invalid_message", f"expected a JSON object, got {_json_type(data)}")
    kind = data.get("type", "message")
    if kind != "message":
        raise ProtocolError("invalid_message", f"field 'type': unknown message type {kind!r}")
    for name in _FIELDS:
        if name not in data:
            raise ProtocolError("invalid_message", f"field '{name}' is missing")
        if not isinstance(data[name], str):
            raise ProtocolError("invalid_message", f"field '{name}' must be a string, got {_json_type(data[name])}")
    handle: str = data["handle"]
    message: str = data["message"]
    _check_text("handle", handle, limits.max_handle_chars)
    _check_text("message", message, limits.max_message_chars)
    if any(unicodedata.category(char) == "Cc" for char in handle):
        raise ProtocolError("invalid_message", "field 'handle' must not contain control characters")
    client_id = data.get("client_id")
    if client_id is not None:
        if not isinstance(client_id, str):
            raise ProtocolError("invalid_message", f"field 'client_id' must be a string, got {_json_type(client_id)}")
        if not 1 <= len(client_id) <= 64:
            raise ProtocolError("invalid_message", "field 'client_id' must be 1 to 64 characters")
        if _UNSTORABLE.search(client_id) or any(unicodedata.category(char) == "Cc" for char in client_id):
            raise ProtocolError("invalid_message", "field 'client_id' must not contain control characters")
    return ClientMessage(handle, message, client_id)


def _check_text(name: str, value: str, max_chars: int) -> None:
    if not value.strip():
        raise ProtocolError("invalid_message", f"field '{name}' must not be empty")
    if len(value) > max_chars:
        raise ProtocolError("invalid_message", f"field '{name}' is longer than {max_chars} characters")
    if _UNSTORABLE.search(value):
        raise ProtocolError("invalid_message", f"field '{name}' contains NUL or an unpaired surrogate")


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


def error_payload(code: str, reason: str) -> dict[str, str]:
    return {"type": "error", "code": code, "error": reason}


GAP = {"type": "gap"}


def text_frame(payload: str) -> bytes:
    """A complete unmasked, uncompressed WebSocket text frame (RFC 6455 5.2).

    Server-to-client frames are never masked, so one frame's bytes can be written to every client of a
    room: the broadcast builds it once instead of once per socket.
    """
    data = payload.encode("utf-8")
    length = len(data)
    if length < 126:
        header = struct.pack("!BB", 0x81, length)
    elif length <= 0xFFFF:
        header = struct.pack("!BBH", 0x81, 126, length)
    else:
        header = struct.pack("!BBQ", 0x81, 127, length)
    return header + data

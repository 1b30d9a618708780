"""Message ids of the memory and SQL backends: decimal integers, "0" meaning "before everything"."""

from __future__ import annotations

from backends.errors import InvalidMessageId


def parse_integer_id(message_id: str) -> int:
    if not (0 < len(message_id) <= 19 and message_id.isascii() and message_id.isdigit()):
        raise InvalidMessageId(f"not a message id: {message_id!r}")
    return int(message_id)

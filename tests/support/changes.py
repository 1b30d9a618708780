"""Helpers for tests of messages that change: the frames of changes, and author keys."""

from __future__ import annotations

from typing import Any

# Author keys as a browser makes them: 22 to 64 characters of A-Z a-z 0-9 _ -.
ANN_KEY = "ann-key-0123456789abcdefXYZ"
BOB_KEY = "bob_key_9876543210ZYXWVUTSR"


def assert_delete_frame(frame: dict[str, Any], message_id: str) -> None:
    """A delete frame of ``message_id``, at a position past the message's own."""
    assert frame == {"type": "delete", "id": message_id, "at": frame.get("at")}, frame
    assert isinstance(frame["at"], str) and int(frame["at"]) > int(message_id), frame

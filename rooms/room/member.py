"""What the fan-out (``rooms.room.fanout``) needs of a socket in a room."""

from __future__ import annotations

from typing import Protocol


class Member(Protocol):
    """What the fan-out needs of a socket in a room."""

    def send_frames(self, data: bytes, frames: int = 1) -> None:
        """Write ``frames`` complete, already-framed WebSocket frames; never raises for a closed or slow peer."""

    def close_going_away(self) -> None:
        """Close with 1001 because the server is shutting down."""

    def send_room(self) -> int:
        """Bytes that may still be written to it before it counts as too slow to keep up."""

    async def drained(self) -> bool:
        """Wait until what was written to it has gone to its socket; whether it is still open."""

    def close_too_slow(self) -> None:
        """Leave its room and close with 1013: it fell too far behind."""

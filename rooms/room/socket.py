"""A socket as the room layer sees it (``Socket``: what a session needs of it), and the socket a session
holds once its life is over (``CLOSED_SOCKET``)."""

from __future__ import annotations

from typing import Protocol

from rooms.room.member import Member


class Socket(Member, Protocol):
    """What a session needs of its socket: a member of its room, which it may close."""

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Send a close frame."""

    def is_closing(self) -> bool:
        """Whether a close frame was sent or received (or the connection is gone)."""


class _ClosedSocket:
    """What a session holds once its life is over, instead of its socket: frames to it go nowhere. A
    session and its socket refer to each other, and letting go of the socket breaks that cycle, so both
    are freed as soon as the last callback holding either has run, without the cycle collector."""

    __slots__ = ()

    def send_frames(self, data: bytes, frames: int = 1) -> None:
        pass

    def close_going_away(self) -> None:
        pass

    def send_room(self) -> int:
        return 0

    async def drained(self) -> bool:
        return False

    def close_too_slow(self) -> None:
        pass

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        pass

    def is_closing(self) -> bool:
        return True


CLOSED_SOCKET = _ClosedSocket()

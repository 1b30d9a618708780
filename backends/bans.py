"""Bans as the backend contract carries them, and the checks and times every store shares."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True, slots=True)
class Ban:
    """A moderator's ban: of a ``handle`` or of a client ``address`` (exactly one of the two), in one
    ``room`` or (``None``) in every room. ``id`` is issued by the store; ``created`` and ``expires`` are
    ISO 8601 in UTC with microseconds (so they sort as text), ``expires`` ``None`` meaning until lifted."""

    id: str
    handle: str | None
    address: str | None
    room: str | None
    reason: str
    created: str
    expires: str | None


def ban_timestamp(moment: datetime) -> str:
    """A ban's ``created`` or ``expires``: always with microseconds, so that timestamps compare as text."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def check_ban(handle: str | None, address: str | None, seconds: float | None) -> None:
    """Refuse (``ValueError``) a ban that names neither or both of a handle and an address, or whose
    ``seconds`` is not a positive number: a caller's mistake, never a client's input reaching the store."""
    if (handle is None) == (address is None) or handle == "" or address == "":
        raise ValueError("a ban names exactly one of a handle and an address")
    if seconds is not None and not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"a ban's seconds must be a positive number, not {seconds!r}")


def ban_term(seconds: float | None, now: datetime | None = None) -> tuple[str, str | None]:
    """``created`` and ``expires`` of a ban made ``now`` for ``seconds`` (``None``: until lifted)."""
    moment = now or datetime.now(UTC)
    expires = None if seconds is None else ban_timestamp(moment + timedelta(seconds=seconds))
    return ban_timestamp(moment), expires

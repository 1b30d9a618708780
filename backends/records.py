"""The values that cross the backend contract (``backends/base.py``): messages on their way in and as
stored, pages of history, replays, presence, bans, room summaries and what a backend is built from.

Nothing here does I/O; every backend and the room layer share these types.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from backends.address_blocks import AddressBlocks
from backends.audit import DEFAULT_AUDIT_KEEP


# Both are made for every message on the hot path, so named tuples: a third of a frozen dataclass's cost.
class NewMessage(NamedTuple):
    """A message on its way in, as the wire module decoded it and the server stamped it."""

    room: str
    handle: str
    message: str
    client_id: str | None
    timestamp: str
    # The sender's client address (its key for per-address limits); empty for none, e.g. an operator's tool.
    sender: str = ""
    # Who a token says sent it (its ``sub``), and whether they moderate the room: set by the room layer
    # (``Identity.author``) only, never from what a client sent. None and False: a handle picked freely.
    user: str | None = None
    moderator: bool = False


class StoredMessage(NamedTuple):
    """A message as history holds it; ``id`` is opaque to clients and unique in its room."""

    id: str
    room: str
    handle: str
    message: str
    timestamp: str
    client_id: str | None = None
    # As the message was sent (see ``NewMessage``): stored with it, and returned exactly by every read.
    user: str | None = None
    moderator: bool = False


# A room's presence lists at most this many handles (docs/protocol.md): the first ones, sorted.
MAX_PRESENCE_HANDLES = 100


class RoomPresence(NamedTuple):
    """Who is in a room: its open sockets, and the distinct handles they announced, sorted (at most
    ``MAX_PRESENCE_HANDLES``). The same shape serves for one process's share and for the whole room."""

    online: int
    handles: tuple[str, ...]


def combined_presence(shares: list[RoomPresence]) -> RoomPresence:
    """The room's presence from every process's share of it."""
    handles: set[str] = set()
    for share in shares:
        handles.update(share.handles)
    return RoomPresence(sum(share.online for share in shares), tuple(sorted(handles)[:MAX_PRESENCE_HANDLES]))


class StoreResult(NamedTuple):
    message: StoredMessage
    duplicate: bool = False


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


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """Messages oldest first; ``has_more`` says whether more exist in the direction read."""

    messages: list[StoredMessage]
    has_more: bool


@dataclass(frozen=True, slots=True)
class Replay:
    """What a client that last saw an id missed: the first page of it, oldest first.

    ``gap`` is true when history no longer holds every message after that id (pruned, or the store was
    reset under the client). ``after`` is the id the page starts after: the client's, or ``"0"`` where
    the store was reset and the page starts at the room's first message. ``page.has_more``: the rest
    follows through ``replay(since=<the page's last id>)``, which tells again whether anything was lost
    meanwhile.
    """

    gap: bool
    after: str
    page: HistoryPage


@dataclass(frozen=True, slots=True)
class RoomSummary:
    label: str
    message_count: int
    last_active: str | None


@dataclass(frozen=True, slots=True)
class BackendOptions:
    """What a backend is built from: the ``backend`` section of the config and the history retention.
    Each backend reads the options it knows; nothing outside ``backends/`` looks at them. ``settings``
    holds the section's keys that one kind of store reads (``sqlite_synchronous``): the backend they
    belong to reads and checks them, and any other leaves them be."""

    url: str
    retain_per_room: int = 10000
    settings: Mapping[str, object] = field(default_factory=dict)
    quota: AddressQuota | None = None
    audit_keep: int = DEFAULT_AUDIT_KEEP


@dataclass(frozen=True, slots=True)
class AddressQuota:
    """What one client address may store, counted where the store can tell (see ``QuotaExceeded``).

    Every backend refuses a first message in a room with no history past ``new_rooms_per_hour``; a
    backend that several processes share (Redis) also counts the address's messages across them. Both
    count in every block of ``blocks`` the sender is in (an IPv6 client's /64, /56 and /48).
    """

    new_rooms_per_hour: int
    messages_per_second: float
    burst: int
    blocks: AddressBlocks = field(default_factory=AddressBlocks)


def utc_timestamp() -> str:
    """The server-set ISO 8601 UTC timestamp a message is stamped with on its way in."""
    return datetime.now(UTC).isoformat()

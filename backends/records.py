"""The values that cross the backend contract (``backends/base.py``) besides messages, bans and presence
(``backends.messages``, ``backends.bans``, ``backends.presence``): room summaries and what a backend is
built from.

Nothing here does I/O; every backend and the room layer share these types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from backends.address_blocks import AddressBlocks
from backends.audit import DEFAULT_AUDIT_KEEP


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

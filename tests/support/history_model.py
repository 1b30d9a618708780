"""The model the contract's state machine (tests/contract/test_backend_stateful.py) checks a backend's
answers against: a room's log of stored messages, and the answers due for a history that keeps every message
from index ``kept`` on."""

from __future__ import annotations

from dataclasses import dataclass, field

from backends.base import StoredMessage


@dataclass
class RoomLog:
    """Every message stored in one room, oldest first, pruned or not, as (reference, under test) pairs."""

    label: str
    pairs: list[tuple[StoredMessage, StoredMessage | None]] = field(default_factory=list)
    reference_index: dict[str, int] = field(default_factory=dict)
    tested_index: dict[str, int] = field(default_factory=dict)
    by_client_id: dict[str, int] = field(default_factory=dict)
    # The backend under test has been seen to hold nothing older than this index: it never un-prunes.
    pruned_at_least: int = 0


Page = tuple[list[int], bool]  # indices into RoomLog.pairs, has_more


def newest_page(kept: int, end: int, limit: int) -> Page:
    """``history(limit, before=<the message at end>)``; end is the room's length for the newest page."""
    start = max(kept, end - limit)
    return list(range(start, end)), start > kept


def page_after(kept: int, after: int, limit: int, length: int) -> Page:
    """``history(limit, after=<the message at index after>)``; after is -1 for "0"."""
    start = max(kept, after + 1)
    return list(range(start, min(length, start + limit))), start + limit < length


def replay_gap(kept: int, since: int) -> bool:
    """Whether a client that saw index ``since`` (-1: "0") missed messages: some after it are pruned."""
    return since < kept - 1

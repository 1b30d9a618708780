"""Messages as the backend contract carries them: on their way in, as history holds them, and the pages
of history and of a replay that reads return."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from backends.changes import MessageChange, Reactions


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
    # The id of a message of the same room it answers; the store refuses one its room does not hold.
    reply_to: str | None = None
    # Who may change it (``backends.changes``): set by the room layer only, never sent to a client.
    author: str | None = None


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
    reply_to: str | None = None
    author: str | None = None  # never sent to a client
    # As it now stands: when it was last edited (its text is the latest), and its reactions.
    edited: str | None = None
    reactions: Reactions = ()


class StoreResult(NamedTuple):
    message: StoredMessage
    duplicate: bool = False


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
    # Asked for with ``origin``: the changes after ``after`` to messages at or before ``origin``, up to
    # where the page ends (the room's newest position when it has no more), in the room's order.
    changes: tuple[MessageChange, ...] = ()


def utc_timestamp() -> str:
    """The server-set ISO 8601 UTC timestamp a message is stamped with on its way in."""
    return datetime.now(UTC).isoformat()

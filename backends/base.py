"""The backend contract: what every store (memory, SQL, Redis) promises the room layer.

A backend stores messages, reads history and pushes each newly stored message to the
:class:`DeliveryTarget` of every process that is subscribed to the room. The guarantees:

* **Stored before broadcast.** A message reaches ``DeliveryTarget.deliver`` only after it is
  durably stored (as durable as the store is), so an echoed message is never lost.
* **One order per room.** Every process receives a room's messages in the order of its history,
  and ids increase in that order (compare them with :meth:`Backend.id_key`, never as strings).
* **At most once per client id.** A message carrying a ``client_id`` already stored in its room is
  not stored or delivered again; ``store`` returns the earlier message with ``duplicate=True``. If a
  moderator deleted that message, the resend is refused with ``MessageDeleted``: it is not stored again.
* **Who sent it is kept.** A message's ``user`` and ``moderator`` are stored with it and come back
  exactly as given from every read and delivery (history, replay, every process, a duplicate's answer);
  a message stored without them (or by an older release) comes back with ``None`` and ``False``.
* **Deleted means gone.** ``delete_message`` removes a message from ``history`` and ``replay`` on every
  process, and tells every process subscribed to its room (``DeliveryTarget.deleted``), after that
  message's own delivery. A deletion is not a gap: replays and reconnects report none for it, and ids
  keep increasing past a deleted one, the newest included.
* **A room's history is a log.** A change to a message (``edit_message``, ``delete_message``, ``react``)
  takes the next position in its room's order, as a message takes its id, and reaches every subscribed
  process (``DeliveryTarget.changed``) in that order among the messages. Reads show each message as it
  now stands (latest text with ``edited``, ``reply_to``, reactions); ``replay`` with ``origin`` also
  answers the changes made after a position to the messages at or before ``origin``. A change to a
  message that is gone (never stored, pruned, deleted) is refused (``MessageNotFound``) and stores
  nothing; so is one by someone not its author (``NotAuthor``). Changes never count as messages (busiest
  rooms, retention, expiry) and go with their message when it is pruned or its room expires.
* **Reads are plain reads.** ``history`` and ``replay`` show what is stored, which may run a moment
  ahead of what has been delivered here; the room hub, which knows what it delivered, holds a joining
  socket until delivery has caught up with what it replayed.
* **Subscriptions are the hub's.** The room hub decides which rooms this process listens to;
  ``subscribe`` and ``unsubscribe`` are idempotent and safe to repeat.
* **Presence and signals are not history.** ``presence`` records this process's share of a room's
  presence and answers the room's presence on every process; ``relay`` passes an ephemeral signal
  (someone is typing) to the other processes in the room. Neither is stored with messages, both may be
  lost; a process that dies leaves presence within the store's expiry. A single-process store needs
  neither: the defaults here are exact for it.
* **Moderation is shared.** Bans and room locks are stored for every process; after a change on any of
  them, every process (the one that made it included) is told ``DeliveryTarget.moderation_changed`` and
  reads them again. Expired bans are never answered and do not stay in storage.
* **The audit log is kept, and bounded.** ``record_audit`` keeps a moderator's action for every process
  to list (``audit_page``), newest first; each entry gets an id greater than every earlier one's (a whole
  number, on every backend), and the store's time. Only the newest ``audit_keep`` entries are kept: the
  log never grows past that, however long the deployment runs.
* **Search finds the same messages on every backend.** ``search`` answers the messages of a room that
  ``SearchQuery.matches`` (``backends/search.py``, the one definition of a word), as they now stand, newest
  first; deleted and pruned messages are never found, and an edited one by its current text only. How a
  store narrows them down is its own affair (the SQL engines' full-text indexes, a bounded read for memory
  and Redis).
* **Storage grows with messages and moderators' actions only.** A room is written with its first
  message; reading a room that has none stores nothing; locking a room stores the lock, not the room.
"""

from __future__ import annotations

import abc
import asyncio
from typing import Protocol, Self

from prometheus_client.registry import Collector

from backends.audit import AuditAction, AuditEntry
from backends.bans import Ban, ban_term, ban_timestamp, check_ban
from backends.changes import MessageChange
from backends.messages import HistoryPage, NewMessage, Replay, StoredMessage, StoreResult, utc_timestamp
from backends.presence import MAX_PRESENCE_HANDLES, RoomPresence, combined_presence
from backends.records import AddressQuota, BackendOptions, RoomSummary
from backends.search import SearchPage, SearchQuery

# The contract's types live in modules of their own (messages, bans, presence, records); they are named here
# too, so that a store or the room layer imports the whole contract from one place.
__all__ = [
    "MAX_PRESENCE_HANDLES",
    "AddressQuota",
    "Backend",
    "BackendOptions",
    "Ban",
    "DeliveryTarget",
    "HistoryPage",
    "MessageChange",
    "NewMessage",
    "Replay",
    "RoomPresence",
    "RoomSummary",
    "StoreResult",
    "StoredMessage",
    "ban_term",
    "ban_timestamp",
    "check_ban",
    "combined_presence",
    "utc_timestamp",
]


class DeliveryTarget(Protocol):
    """What a backend pushes to: this process's room hub."""

    def deliver(self, message: StoredMessage) -> None:
        """A message was stored in a room this process is subscribed to."""

    def gap(self, room: str) -> None:
        """Messages of ``room`` may have been lost by the store (e.g. it came back empty)."""

    def signal(self, room: str, signal: str) -> None:
        """Another process relayed ``signal`` (see ``Backend.relay``) in a room this process is subscribed to."""

    def presence_changed(self, room: str) -> None:
        """Another process's share of ``room``'s presence changed (or expired): read it again."""

    def changed(self, change: MessageChange) -> None:
        """A message of a room this process is subscribed to was edited, deleted (by a moderator or its
        author) or reacted to, on any process (this one included): in the room's order, after that
        message's own delivery."""

    def moderation_changed(self) -> None:
        """Bans or room locks changed on some process (this one included), or notices of such changes
        may have been missed (a reconnect): read ``bans`` and ``locked_rooms`` again."""


class Backend(abc.ABC):
    """The one contract every store implements. See the module docstring for its guarantees."""

    kind: str = "abstract"

    def __init__(self) -> None:
        self._target: DeliveryTarget | None = None

    @classmethod
    @abc.abstractmethod
    def from_options(cls, options: BackendOptions) -> Self:
        """Build the backend from the config; raise ``BackendConfigError`` naming the bad option."""

    @classmethod
    def check_options(cls, options: BackendOptions) -> None:
        """Check what ``from_options`` would read, building and connecting nothing, as the config loads;
        raise ``BackendConfigError`` naming the bad option. A backend may leave its checks to ``from_options``."""
        return None

    def set_delivery_target(self, target: DeliveryTarget) -> None:
        """Registered once by the room hub before ``start``; every delivery goes there."""
        self._target = target

    @abc.abstractmethod
    async def start(self) -> None:
        """Connect and prepare the store; raise ``BackendUnavailable`` if it cannot be reached."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Finish in-flight writes and release every connection; safe to call twice."""

    @abc.abstractmethod
    async def health(self) -> None:
        """Return if the store answers now; raise ``BackendUnavailable`` with the reason otherwise."""

    @abc.abstractmethod
    def store_soon(self, message: NewMessage) -> asyncio.Future[StoreResult]:
        """Start storing a message, giving it its id; it is delivered to subscribed processes once
        stored. The answer comes as a Future, so the caller need not wait for it before starting the
        next: stores started one after another are stored, delivered and answered in the order they were
        started (a socket keeps several of its messages in flight that way).

        The Future fails with ``BackendUnavailable`` when the message could not be stored: it was then
        not delivered.
        """

    async def store(self, message: NewMessage) -> StoreResult:
        """``store_soon``, waited for."""
        return await self.store_soon(message)

    @abc.abstractmethod
    async def history(self, room: str, limit: int, before: str | None = None, after: str | None = None) -> HistoryPage:
        """Up to ``limit`` messages, oldest first: the newest (optionally older than ``before``), or
        the oldest newer than ``after``. Ids are validated by :meth:`id_key` first."""

    @abc.abstractmethod
    async def search(self, room: str, query: SearchQuery, limit: int, before: str | None = None) -> SearchPage:
        """Up to ``limit`` of the room's messages that ``query`` matches, newest first, older than
        ``before`` if given (validated by :meth:`id_key` first); never one deleted or pruned. A query
        with no word (``SearchQuery.is_empty``) finds nothing."""

    @abc.abstractmethod
    async def replay(self, room: str, since: str, limit: int, origin: str | None = None) -> Replay:
        """What a client that last saw ``since`` missed, in one read of the store: whether history
        still holds all of it, and its first ``limit`` messages as they now stand. With ``origin`` (the
        position the client resumed from, at or before ``since``), also the changes made after ``since``
        to messages at or before ``origin``, up to where the page ends (``Replay.changes``)."""

    @abc.abstractmethod
    async def message(self, room: str, message_id: str) -> StoredMessage | None:
        """The message ``message_id`` of ``room`` as it now stands; None when the room holds no such
        message (never stored, pruned, deleted). The id is validated by :meth:`id_key` first."""

    @abc.abstractmethod
    async def edit_message(
        self, room: str, message_id: str, text: str, edited: str, authors: frozenset[str]
    ) -> MessageChange:
        """Give a message of ``room`` the text ``text``, edited at ``edited``, if its ``author`` is one
        of ``authors``; the change takes the room's next position and is delivered (``changed``). Raises
        ``InvalidMessageId``, ``MessageNotFound`` or ``NotAuthor`` and changes nothing."""

    @abc.abstractmethod
    async def react(self, room: str, message_id: str, reactor: str, emoji: str, on: bool) -> MessageChange | None:
        """Add (``on``) or take back ``reactor``'s reaction ``emoji`` to a message of ``room``: the change
        takes the room's next position and is delivered (``changed``), with every count after it; None
        (nothing stored, nobody told) when it changes nothing. Raises ``InvalidMessageId``,
        ``MessageNotFound``, or ``TooManyReactions`` past ``MAX_REACTION_KINDS`` different emoji."""

    @abc.abstractmethod
    async def subscribe(self, room: str) -> str:
        """Start delivering ``room``'s new messages to this process; idempotent.

        Returns the id delivery starts after: from the moment this returns, every message of the room
        with a greater id is still to be delivered here, and none with that id or a smaller one is (it
        was delivered before this returned, or never will be). The hub holds a joining socket on it.
        """

    @abc.abstractmethod
    async def unsubscribe(self, room: str) -> None:
        """Stop delivering ``room``'s messages to this process; idempotent."""

    @abc.abstractmethod
    async def delete_message(self, room: str, message_id: str, authors: frozenset[str] | None = None) -> bool:
        """Delete a message of ``room``; ``False`` when the room holds no such message (never stored,
        pruned, or deleted already). The id is validated by :meth:`id_key` first (``InvalidMessageId``).
        ``authors`` None: a moderator deletes it; else its author must be one of them (``NotAuthor``). The
        deletion takes the room's next position and is told through ``changed``.

        From the moment this returns, ``history`` and ``replay`` never return the message, on any
        process. Every process subscribed to the room (this one included) is told through
        ``DeliveryTarget.deleted``, after that message's own delivery there. The deletion leaves no gap:
        a replay or reconnect from before or at the deleted id reports none, and ids go on increasing
        past it even when it was the room's newest. The room's message count (``busiest_rooms``) drops
        by one; its last activity (and so its expiry) stays that of its newest message ever stored.

        A later ``store`` of the same ``client_id`` in the room is refused with ``MessageDeleted``: it is
        not stored again (the sender learns that a moderator removed it), for as long as the store would
        have found the message itself a duplicate.
        """

    @abc.abstractmethod
    async def add_ban(
        self, handle: str | None, address: str | None, room: str | None, seconds: float | None, reason: str
    ) -> Ban:
        """Store a ban of ``handle`` or ``address`` (exactly one; see :func:`check_ban`, ``ValueError``)
        in ``room`` (``None``: every room) for ``seconds`` (``None``: until lifted), and tell every
        process (``moderation_changed``). Expired bans are removed from storage here at the latest.
        Times are the store's clock (Redis: the server's, which every process shares)."""

    @abc.abstractmethod
    async def bans(self) -> list[Ban]:
        """The bans in force now, oldest first. An expired ban is never answered, and is removed from
        storage here at the latest, so storage does not grow with bans that ran out."""

    @abc.abstractmethod
    async def lift_ban(self, ban_id: str) -> bool:
        """Remove a ban and tell every process (``moderation_changed``); ``False`` (and nobody told) if
        no ban in force has that id: unknown, lifted already, or expired."""

    @abc.abstractmethod
    async def set_locked(self, room: str, locked: bool) -> None:
        """Lock or unlock ``room``; idempotent. A change tells every process (``moderation_changed``);
        setting what already holds tells nobody. Locking stores the lock only, never a room row: a room
        with no messages stays one (``busiest_rooms``, expiry, the new-room quota)."""

    @abc.abstractmethod
    async def locked_rooms(self) -> frozenset[str]:
        """The labels of the rooms locked now."""

    @abc.abstractmethod
    async def record_audit(self, action: AuditAction) -> AuditEntry:
        """Keep ``action`` in the audit log, stamped with the store's time and an id greater than every
        entry's before it (on every process), and drop the oldest entries past ``audit_keep``."""

    @abc.abstractmethod
    async def audit_page(self, limit: int, before: int | None = None) -> list[AuditEntry]:
        """Up to ``limit`` entries of the audit log, newest first: the newest, or those older than the
        entry ``before`` (which need not be kept still)."""

    @abc.abstractmethod
    async def busiest_rooms(self, limit: int) -> list[RoomSummary]:
        """The rooms with the most messages (stored and not deleted by a moderator; pruned ones count),
        most first."""

    @abc.abstractmethod
    async def expire_rooms(self, idle_since: str) -> int:
        """Remove every room whose newest message is stamped before ``idle_since`` (a timestamp as
        ``utc_timestamp`` makes), with all its history and bookkeeping; how many were removed. A message
        stored meanwhile keeps its room. A room removed is new again: its next message is its first."""

    async def presence(self, room: str, share: RoomPresence, changed: bool) -> RoomPresence:
        """Record ``share``, this process's part of the room's presence (``online`` 0: it has none), and
        answer the room's presence across every process. ``changed``: the share differs from the last one
        recorded, so the other processes in the room are told to read it again (``presence_changed``).
        Raises ``BackendUnavailable`` when the store cannot be reached. One process: the share is the room."""
        return share

    def relay(self, room: str, signal: str) -> None:
        """Pass ``signal`` to every other process subscribed to ``room`` (its ``DeliveryTarget.signal``):
        at most once, unordered, never stored, and dropped rather than queued without bound. This process
        delivers its own signals itself. One process: there is nobody to tell."""
        return None

    def metrics_collectors(self) -> list[Collector]:
        """Extra Prometheus collectors (e.g. counters shared by every process); registered on the app's
        registry at start. Most backends have none."""
        return []

    @abc.abstractmethod
    def id_key(self, message_id: str) -> tuple[int, ...]:
        """A sortable key for an id this backend issues; raises ``InvalidMessageId`` for any other
        string. ``"0"`` is always valid and sorts before every message."""

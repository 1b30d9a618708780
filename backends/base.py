"""The backend contract: what every store (memory, SQL, Redis) promises the room layer.

A backend stores messages, reads history and pushes each newly stored message to the
:class:`DeliveryTarget` of every process that is subscribed to the room. The guarantees:

* **Stored before broadcast.** A message reaches ``DeliveryTarget.deliver`` only after it is
  durably stored (as durable as the store is), so an echoed message is never lost.
* **One order per room.** Every process receives a room's messages in the order of its history,
  and ids increase in that order (compare them with :meth:`Backend.id_key`, never as strings).
* **At most once per client id.** A message carrying a ``client_id`` already stored in its room is
  not stored or delivered again; ``store`` returns the earlier message with ``duplicate=True``.
* **History never runs ahead of delivery.** For a room this process is subscribed to, ``history``
  returns only messages already delivered here: the hub replays history to a joining socket, then
  sends it the live messages newer than those, so a message read first and delivered later would
  reach that socket twice.
* **Subscriptions are the hub's.** The room hub decides which rooms this process listens to;
  ``subscribe`` and ``unsubscribe`` are idempotent and safe to repeat.
"""

from __future__ import annotations

import abc
import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol


# Made for every message on the hot path, so named tuples: a third of a frozen dataclass's cost to build.
class StoredMessage(NamedTuple):
    """A message as history holds it; ``id`` is opaque to clients and unique in its room."""

    id: str
    room: str
    handle: str
    message: str
    timestamp: str
    client_id: str | None = None

    def to_wire(self) -> dict[str, Any]:
        """The JSON object PROTOCOL.md sends for a message (``client_id`` only when the sender set one)."""
        wire: dict[str, Any] = {
            "type": "message",
            "id": self.id,
            "room": self.room,
            "handle": self.handle,
            "message": self.message,
            "timestamp": self.timestamp,
        }
        if self.client_id is not None:
            wire["client_id"] = self.client_id
        return wire


class StoreResult(NamedTuple):
    message: StoredMessage
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """Messages oldest first; ``has_more`` says whether more exist in the direction read."""

    messages: list[StoredMessage]
    has_more: bool


@dataclass(frozen=True, slots=True)
class Recovery:
    """Where a reconnecting client's replay starts.

    ``gap`` is true when history no longer holds every message after the client's id (pruned, or the
    store was reset); replay then starts at ``replay_after``, which may be earlier than the client's id.
    """

    gap: bool
    replay_after: str


@dataclass(frozen=True, slots=True)
class RoomSummary:
    label: str
    message_count: int
    last_active: str | None


class DeliveryTarget(Protocol):
    """What a backend pushes to: this process's room hub."""

    def deliver(self, message: StoredMessage) -> None:
        """A message was stored in a room this process is subscribed to."""

    def gap(self, room: str) -> None:
        """Messages of ``room`` may have been lost by the store (e.g. it came back empty)."""


def utc_timestamp() -> str:
    """The server-set ISO 8601 UTC timestamp every backend stamps messages with."""
    return datetime.now(UTC).isoformat()


class Backend(abc.ABC):
    """The one contract every store implements. See the module docstring for its guarantees."""

    kind: str = "abstract"

    def __init__(self) -> None:
        self._target: DeliveryTarget | None = None

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
    async def ensure_room(self, room: str) -> None:
        """Make the room exist (rooms are created by their first visit)."""

    @abc.abstractmethod
    def store_soon(self, room: str, handle: str, message: str, client_id: str | None) -> asyncio.Future[StoreResult]:
        """Start storing a message, stamping its id and timestamp; it is delivered to subscribed
        processes once stored. The answer comes as a Future, so the caller need not wait for it before
        starting the next: stores started one after another are stored, delivered and answered in the
        order they were started (a socket keeps several of its messages in flight that way).

        The Future fails with ``BackendUnavailable`` when the message could not be stored: it was then
        not delivered.
        """

    async def store(self, room: str, handle: str, message: str, client_id: str | None) -> StoreResult:
        """``store_soon``, waited for."""
        return await self.store_soon(room, handle, message, client_id)

    @abc.abstractmethod
    async def history(
        self, room: str, limit: int, before: str | None = None, after: str | None = None
    ) -> HistoryPage:
        """Up to ``limit`` messages, oldest first: the newest (optionally older than ``before``), or
        the oldest newer than ``after``. Ids are validated by :meth:`id_key` first."""

    @abc.abstractmethod
    async def recovery(self, room: str, since: str) -> Recovery:
        """Whether a client that last saw ``since`` can be replayed without a gap, and from where."""

    @abc.abstractmethod
    async def subscribe(self, room: str) -> None:
        """Start delivering ``room``'s new messages to this process; idempotent."""

    @abc.abstractmethod
    async def unsubscribe(self, room: str) -> None:
        """Stop delivering ``room``'s messages to this process; idempotent."""

    @abc.abstractmethod
    async def busiest_rooms(self, limit: int) -> list[RoomSummary]:
        """The rooms with the most messages, most first."""

    def metrics_collectors(self) -> list[Any]:
        """Extra Prometheus collectors (e.g. counters shared by every process); registered on the app's
        registry at start. Most backends have none."""
        return []

    @abc.abstractmethod
    def id_key(self, message_id: str) -> tuple[int, ...]:
        """A sortable key for an id this backend issues; raises ``InvalidMessageId`` for any other
        string. ``"0"`` is always valid and sorts before every message."""

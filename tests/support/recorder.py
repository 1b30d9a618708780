"""A stand-in for the room hub: what a backend under test delivers, kept for the test to read."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from backends.base import Backend, StoredMessage
from backends.changes import ChangeKind, MessageChange


class Recorder:
    """A stand-in for the room hub that keeps what the backend delivers."""

    def __init__(self) -> None:
        self.delivered: list[StoredMessage] = []
        self.gaps: list[str] = []
        self.signals: list[tuple[str, str]] = []
        self.presence_changes: list[str] = []
        self.deletions: list[tuple[str, str]] = []
        self.changes: list[MessageChange] = []
        self.moderation_changes = 0
        # Deliveries and deletions in the order they came: ("deliver" | "deleted", room, id).
        self.events: list[tuple[str, str, str]] = []
        self.arrived = asyncio.Event()

    def deliver(self, message: StoredMessage) -> None:
        self.delivered.append(message)
        self.events.append(("deliver", message.room, message.id))
        self.arrived.set()

    def changed(self, change: MessageChange) -> None:
        # A deletion with a position is still a deletion to a test that reads ``deletions``.
        self.changes.append(change)
        if change.kind is ChangeKind.DELETE:
            self.deletions.append((change.room, change.id))
            self.events.append(("deleted", change.room, change.id))
        else:
            self.events.append((change.kind.value, change.room, change.id))

    def moderation_changed(self) -> None:
        self.moderation_changes += 1

    def gap(self, room: str) -> None:
        self.gaps.append(room)

    def signal(self, room: str, signal: str) -> None:
        self.signals.append((room, signal))

    def presence_changed(self, room: str) -> None:
        self.presence_changes.append(room)

    async def wait_for(self, count: int, timeout: float = 5) -> list[StoredMessage]:
        async def enough() -> None:
            while len(self.delivered) < count:
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(enough(), timeout)
        return self.delivered


async def subscribed_backend(
    make_backend: Callable[..., Awaitable[Backend]], room: str, **options: Any
) -> tuple[Backend, Recorder]:
    """A backend from the contract's ``make_backend`` fixture, delivering to a recorder, subscribed to ``room``."""
    backend = await make_backend(**options)
    recorder = Recorder()
    backend.set_delivery_target(recorder)
    await backend.subscribe(room)
    return backend, recorder

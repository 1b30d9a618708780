"""Where each subscribed room's delivery stands, and what this process counts of it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from backends.redis.keys import ZERO_ID, StreamId


@dataclass
class Feed:
    """One subscribed room: where its delivery stands."""

    last: StreamId = ZERO_ID
    # The number (in the room) of the last deletion told or known of when subscribing.
    deletions: int = 0
    # Whether ``last`` is known: false until the first subscription has read where the stream ended.
    anchored: bool = False
    # The room's epoch (``RedisKeys.room_epoch``) when last read: '' for a room without one, None before.
    epoch: str | None = None
    live: bool = False
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    # Answers waiting for delivery to reach an id (see ``wait_delivered``).
    waiters: list[tuple[StreamId, asyncio.Future[None]]] = field(default_factory=list)


@dataclass
class SubscriberStats:
    """Counted by this process, exposed on /metrics."""

    sessions_lost: int = 0
    caught_up: int = 0
    gaps: int = 0
    resets: int = 0


def release(waiters: list[tuple[StreamId, asyncio.Future[None]]]) -> None:
    for _, waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)

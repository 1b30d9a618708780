"""Where each subscribed room's delivery stands, and the one way what Redis pushes reaches the hub.

Every pub/sub session hands what it hears to ``Delivery``, which holds this process's
``DeliveryTarget`` (registered by the hub through ``RedisBackend.set_delivery_target``) and counts what
went by for /metrics.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from backends.base import DeliveryTarget, MessageChange, StoredMessage
from backends.redis.channel import PresenceChange, Signal
from backends.redis.entries import ZERO_ID, StreamId, format_stream_id

log = logging.getLogger(__name__)


@dataclass
class Feed:
    """One subscribed room: where its delivery stands."""

    # The room's last position delivered: a message's id or a change's.
    last: StreamId = ZERO_ID
    # Whether ``last`` is known: false until the first subscription has read where the stream ended.
    anchored: bool = False
    # The room's epoch (``RedisKeys.room_epoch``) when last read: '' for a room without one, None before.
    epoch: str | None = None
    live: bool = False
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    # Answers waiting for delivery to reach an id (see ``wait_delivered``).
    waiters: list[tuple[StreamId, asyncio.Future[None]]] = field(default_factory=list)

    def start_over(self) -> None:
        """The stream delivered from is gone: deliver the room from its new beginning."""
        self.last = ZERO_ID
        release(self.waiters)  # the ids they wait for will never come
        self.waiters.clear()

    async def wait_delivered(self, room: str, key: StreamId, timeout: float) -> None:
        """Return once ``room``'s messages are delivered up to ``key``.

        The store script's reply can reach this process a moment before its pub/sub message, and a
        sender must hear of its message through the room's broadcast before any later reply to it (an
        error, a resent duplicate). So a batch's answers wait here until delivery has caught up with what
        it stored (microseconds: the message is already on its way). After ``timeout`` they go regardless.
        """
        if self.last >= key:
            return
        waiter = asyncio.get_running_loop().create_future()
        entry = (key, waiter)
        self.waiters.append(entry)
        try:
            await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            log.warning("room %s: delivery did not reach %s within %.0fs", room, format_stream_id(key), timeout)
        finally:
            if entry in self.waiters:
                self.waiters.remove(entry)


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


class Delivery:
    """What reaches this process's hub: messages, changes to them, gaps, signals and notices."""

    def __init__(self, origin: str) -> None:
        self.target: DeliveryTarget | None = None
        # This process on a room's channel (``backends.redis.channel``): what it sent itself is not told.
        self.origin = origin
        self.stats = SubscriberStats()

    def deliver(self, feed: Feed, key: StreamId, message: StoredMessage) -> None:
        feed.last = key
        if self.target is not None:
            self.target.deliver(message)
        self._release(feed, key)

    @staticmethod
    def _release(feed: Feed, key: StreamId) -> None:
        if feed.waiters:
            reached = [entry for entry in feed.waiters if entry[0] <= key]
            for entry in reached:
                feed.waiters.remove(entry)
            release(reached)

    def changed(self, feed: Feed, key: StreamId, change: MessageChange) -> None:
        feed.last = key
        if self.target is not None:
            self.target.changed(change)
        self._release(feed, key)

    def gap(self, room: str) -> None:
        self.stats.gaps += 1
        if self.target is not None:
            self.target.gap(room)

    def stream_lost(self, room: str, feed: Feed) -> None:
        """The stream delivered from is gone (its shard lost its data, or the room expired) and the room
        has another: tell clients, and deliver the new one from its beginning."""
        log.warning("room %s: its stream was lost and made again; telling its clients", room)
        self.gap(room)
        feed.start_over()

    def notice(self, room: str, notice: Signal | PresenceChange) -> None:
        """A signal or presence notice from the room's channel, unless this process sent it."""
        if notice.origin == self.origin or self.target is None:
            return
        if isinstance(notice, Signal):
            self.target.signal(room, notice.signal)
        else:
            self.target.presence_changed(room)

    def presence_changed(self, room: str) -> None:
        if self.target is not None:
            self.target.presence_changed(room)

    def moderation_changed(self) -> None:
        if self.target is not None:
            self.target.moderation_changed()

"""Relaying ephemeral signals (someone is typing) to the other processes of a room, on the room's
pub/sub channel (``!<origin> <signal>``, ``backends.redis.channel``): sent in batches, never stored, and
dropped rather than queued without end while Redis is slow or away."""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from backends.redis.channel import encode_signal
from backends.redis.keys import RedisKeys

log = logging.getLogger(__name__)

MAX_QUEUED_SIGNALS = 10_000  # past this, signals are dropped: they are ephemeral, and memory is not


class SignalRelay:
    def __init__(self, redis: Redis, keys: RedisKeys, origin: str) -> None:
        self._redis = redis
        self._keys = keys
        self._origin = origin
        self._signals: list[tuple[str, str]] = []
        self._signal_sender: asyncio.Task[None] | None = None

    async def close(self) -> None:
        """Return once the signals queued are sent."""
        if self._signal_sender is not None:
            await asyncio.wait([self._signal_sender])

    def relay(self, room: str, signal: str) -> None:
        if len(self._signals) >= MAX_QUEUED_SIGNALS:
            return
        self._signals.append((room, signal))
        if self._signal_sender is None:
            self._signal_sender = asyncio.create_task(self._send_signals(), name="redis-signals")

    async def _send_signals(self) -> None:
        try:
            while self._signals:
                batch, self._signals = self._signals, []
                pipe = self._redis.pipeline(transaction=False)
                for room, signal in batch:
                    pipe.spublish(self._keys.channel(room), encode_signal(self._origin, signal))
                try:
                    await pipe.execute()
                except (RedisError, OSError) as exc:
                    log.debug("%d signals not relayed: %s", len(batch), exc)
        finally:
            self._signal_sender = None

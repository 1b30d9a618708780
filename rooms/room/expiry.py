"""Idle rooms removed: with ``history.expire_after_days``, a room whose newest message is older than that
goes, with all its history, checked several times per period."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from backends.base import Backend
from backends.errors import BackendUnavailable
from rooms.room.metrics import RoomsMetrics

log = logging.getLogger(__name__)

MIN_EXPIRY_INTERVAL = 1.0
MAX_EXPIRY_INTERVAL = 3600.0


class RoomExpiry:
    def __init__(self, backend: Backend, metrics: RoomsMetrics, expire_after_days: float) -> None:
        self._backend = backend
        self._metrics = metrics
        self._expire_after = timedelta(days=expire_after_days)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start removing idle rooms, if asked for (on the running loop)."""
        if self._expire_after and self._task is None:
            self._task = asyncio.create_task(self._expire_idle_rooms(), name="rooms-expiry")

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _expire_idle_rooms(self) -> None:
        # Checked several times per period, so a room goes at most a small fraction past its time.
        interval = min(MAX_EXPIRY_INTERVAL, max(MIN_EXPIRY_INTERVAL, self._expire_after.total_seconds() / 24))
        while True:
            await asyncio.sleep(interval)
            idle_since = (datetime.now(UTC) - self._expire_after).isoformat()
            try:
                removed = await self._backend.expire_rooms(idle_since)
            except BackendUnavailable as exc:
                log.warning("idle rooms not removed, will try again: %s", exc)
                continue
            if removed:
                self._metrics.rooms_expired.inc(removed)
                log.info("removed %d rooms with no message since %s", removed, idle_since)

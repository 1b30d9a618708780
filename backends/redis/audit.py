"""The audit log on Redis: one stream for the deployment (``RedisKeys.audit``), capped at ``audit_keep``.

Every process records into the same stream, in one script that takes the next id from a counter beside
it (both tagged ``{moderation}``, so one Cluster slot holds them) and trims the stream to its newest
entries as it adds one. An entry's stream id is ``<id>-0``: reading the page before an id is one
``XREVRANGE``. The time is Redis's own clock, which every process shares.
"""

from __future__ import annotations

import json
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from backends.audit import AuditAction, AuditEntry
from backends.errors import BackendUnavailable
from backends.redis.keys import RedisKeys
from backends.redis.moderation import iso_from_microseconds
from backends.redis.scripts import AUDIT, run_script


class RedisAuditLog:
    def __init__(self, redis: Redis, keys: RedisKeys, keep: int) -> None:
        self._redis = redis
        self._keys = keys
        self._keep = keep

    async def record(self, action: AuditAction) -> AuditEntry:
        fields = {
            "actor": action.actor,
            "action": action.action,
            "room": action.room,
            "reason": action.reason,
            "details": dict(action.details),
        }
        encoded = json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
        keys = [self._keys.audit, self._keys.audit_ids]
        try:
            entry_id, at = await run_script(self._redis, AUDIT, keys, [self._keep, encoded])
        except (RedisError, OSError) as exc:
            raise BackendUnavailable(f"audit entry not stored: {exc}") from None
        return AuditEntry.of(int(entry_id), iso_from_microseconds(str(at)), action)

    async def page(self, limit: int, before: int | None) -> list[AuditEntry]:
        if before is not None and before <= 1:
            return []
        newest = "+" if before is None else str(before - 1)  # ``<n>`` ends at ``<n>-<any>``
        try:
            found = await self._redis.xrevrange(self._keys.audit, max=newest, min="-", count=limit)
        except (RedisError, OSError) as exc:
            raise BackendUnavailable(f"audit log not read: {exc}") from None
        return [_entry(stream_id, fields) for stream_id, fields in cast(list[tuple[str, dict[str, str]]], found)]


def _entry(stream_id: str, fields: dict[str, str]) -> AuditEntry:
    decoded: dict[str, Any] = json.loads(fields["entry"])
    return AuditEntry(
        int(stream_id.partition("-")[0]),
        iso_from_microseconds(fields["at"]),
        decoded["actor"],
        decoded["action"],
        decoded["room"],
        decoded["reason"],
        decoded["details"],
    )

"""The SQL backend's moderation and audit log, as the contract asks for them: what ``backend.py`` runs on
its pruner thread (``_moderate``) and reader threads (``_read``), queries in ``moderation.py`` and ``audit.py``."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from backends.audit import AuditAction, AuditEntry
from backends.base import Backend, Ban, ban_term, ban_timestamp, check_ban
from backends.sql.audit import AuditLog
from backends.sql.moderation import ModerationStore

T = TypeVar("T")
MAX_BAN_ID = 2**63 - 1


class SQLModeration(Backend):
    """Bans, locks and the audit log of the SQL backend (``SQLBackend`` runs the threads)."""

    _moderation: ModerationStore
    _audit: AuditLog
    _loop: asyncio.AbstractEventLoop | None

    @abc.abstractmethod
    async def _moderate(self, operation: str, query: Callable[[], T]) -> T:
        """Run a moderator's write on the pruner's thread."""

    @abc.abstractmethod
    async def _read(self, operation: str, query: Callable[[], T]) -> T:
        """Run a read on a reader thread."""

    async def add_ban(
        self, handle: str | None, address: str | None, room: str | None, seconds: float | None, reason: str
    ) -> Ban:
        check_ban(handle, address, seconds)
        created, expires = ban_term(seconds)
        ban = await self._moderate(
            "ban", lambda: self._moderation.add_ban(handle, address, room, reason, created, expires)
        )
        self._moderation_changed()
        return ban

    async def bans(self) -> list[Ban]:
        return await self._moderate("bans read", lambda: self._moderation.bans(_now()))

    async def lift_ban(self, ban_id: str) -> bool:
        if not (ban_id.isascii() and ban_id.isdigit() and 0 < int(ban_id) <= MAX_BAN_ID):
            return False  # not an id this store issues
        lifted = await self._moderate("ban lift", lambda: self._moderation.lift_ban(int(ban_id), _now()))
        if lifted:
            self._moderation_changed()
        return lifted

    async def set_locked(self, room: str, locked: bool) -> None:
        if await self._moderate("lock", lambda: self._moderation.set_locked(room, locked)):
            self._moderation_changed()

    async def locked_rooms(self) -> frozenset[str]:
        return await self._read("locks read", self._moderation.locked_rooms)

    async def record_audit(self, action: AuditAction) -> AuditEntry:
        return await self._moderate("audit entry", lambda: self._audit.record(action, _now()))

    async def audit_page(self, limit: int, before: int | None = None) -> list[AuditEntry]:
        return await self._read("audit read", lambda: self._audit.page(limit, before))

    def _moderation_changed(self) -> None:
        if self._target is not None and self._loop is not None:
            self._loop.call_soon(self._target.moderation_changed)


def _now() -> str:
    return ban_timestamp(datetime.now(UTC))

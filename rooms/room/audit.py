"""The audit log, as the room layer keeps and reads it: each moderator's action stored by the backend
(``Backend.record_audit``) and written as one line of the ``rooms.audit`` log, whose record carries the
entry's fields (``id``, ``at``, ``actor``, ``action``, ``room``, ``reason`` and the action's details) as
attributes, for a log format that prints them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

from backends.audit import AuditAction, AuditEntry
from backends.base import Backend
from backends.errors import BackendUnavailable

log = logging.getLogger(__name__)
audit_log = logging.getLogger("rooms.audit")

# A page of the log read for a moderator of some rooms only skips the others' entries: read this many at a time.
READ_AT_LEAST = 100


async def record(backend: Backend, action: AuditAction) -> None:
    """Keep ``action`` (done already) in the audit log, and log it. A store that cannot answer loses the
    entry but not the line: the action stands either way, and is not undone for want of its record."""
    entry: AuditEntry | None = None
    try:
        entry = await backend.record_audit(action)
    except BackendUnavailable as exc:
        log.warning("a moderator's %s was not kept in the audit log: %s", action.action, exc)
    fields = {
        "id": entry.id if entry else None,
        "at": entry.at if entry else None,
        "actor": action.actor,
        "action": action.action,
        "room": action.room,
        "reason": action.reason,
        **action.details,
    }
    where = "every room" if action.room is None else action.room
    audit_log.info("%s by %s in %s%s", action.action, action.actor, where, _said(action), extra=fields)


def _said(action: AuditAction) -> str:
    details = "".join(f" {key}={value}" for key, value in action.details.items() if value is not None)
    return details + (f" reason={action.reason!r}" if action.reason else "")


async def read_page(
    backend: Backend, limit: int, before: int | None, shown: Callable[[str | None], bool]
) -> tuple[list[AuditEntry], int | None]:
    """Up to ``limit`` entries, newest first (older than ``before`` if given), of those whose room
    ``shown`` takes (a moderator sees the rooms they moderate), and the ``before`` of the next page, or
    None when no older entry is shown."""
    found: list[AuditEntry] = []
    async for entry in _entries(backend, max(limit + 1, READ_AT_LEAST), before):
        if shown(entry.room):
            found.append(entry)
            if len(found) > limit:
                return found[:limit], found[limit - 1].id
    return found, None


async def _entries(backend: Backend, batch: int, before: int | None) -> AsyncIterator[AuditEntry]:
    while True:
        page = await backend.audit_page(batch, before)
        for entry in page:
            yield entry
        if len(page) < batch:
            return
        before = page[-1].id

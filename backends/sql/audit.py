"""The SQL backend's audit log: the ``audit_log`` table, its newest ``audit_keep`` rows kept.

An entry's id is the table's increasing key; recording one deletes the rows that many ids below it in
the same transaction, so the table never holds more than ``audit_keep`` (fewer where the database skipped
ids, as MySQL may after a rollback).
"""

from __future__ import annotations

from backends.audit import AuditAction, AuditEntry, details_from_json, details_json
from backends.sql.database import RoomsDatabase, select_rows


class AuditLog:
    def __init__(self, database: RoomsDatabase, keep: int) -> None:
        self._database = database
        self._table = database.tables.audit
        self._keep = keep

    def record(self, action: AuditAction, at: str) -> AuditEntry:
        table = self._table
        with self._database.atomic():
            entry_id = int(
                table.insert(
                    at=at,
                    actor=action.actor,
                    action=action.action,
                    room=action.room,
                    reason=action.reason,
                    details=details_json(action.details),
                ).execute()
            )
            table.delete().where(table.id <= entry_id - self._keep).execute()
        return AuditEntry.of(entry_id, at, action)

    def page(self, limit: int, before: int | None) -> list[AuditEntry]:
        """Up to ``limit`` entries, newest first, older than ``before`` if given."""
        table = self._table
        query = table.select(
            table.id, table.at, table.actor, table.action, table.room, table.reason, table.details
        ).order_by(table.id.desc())
        if before is not None:
            query = query.where(table.id < before)
        return [
            AuditEntry(int(entry_id), at, actor, action, room, reason, details_from_json(details))
            for entry_id, at, actor, action, room, reason, details in select_rows(query.limit(limit))
        ]

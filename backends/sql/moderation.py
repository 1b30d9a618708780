"""The SQL backend's moderation storage: bans and room locks (deletions are changes: ``changes.py``).

Moderators' writes run on the pruner's thread, each in a transaction of its own: rare, and never in a
sender's way. Locks are read on the reader threads.
"""

from __future__ import annotations

from backends.base import Ban
from backends.sql.database import RoomsDatabase, select_rows


class ModerationStore:
    def __init__(self, database: RoomsDatabase) -> None:
        self._database = database
        self._ban, self._lock = database.tables.ban, database.tables.lock

    def add_ban(
        self, handle: str | None, address: str | None, room: str | None, reason: str, created: str, expires: str | None
    ) -> Ban:
        with self._database.atomic():
            self._drop_expired_bans(created)
            ban_id = self._ban.insert(
                handle=handle, address=address, room=room, reason=reason, created=created, expires=expires
            ).execute()
        return Ban(str(ban_id), handle, address, room, reason, created, expires)

    def bans(self, now: str) -> list[Ban]:
        """The bans in force at ``now``, oldest first; the expired ones are deleted on the way."""
        ban = self._ban
        query = ban.select(ban.id, ban.handle, ban.address, ban.room, ban.reason, ban.created, ban.expires).order_by(
            ban.id
        )
        rows = select_rows(query)
        if any(row[-1] is not None and row[-1] <= now for row in rows):
            with self._database.atomic():
                self._drop_expired_bans(now)
        return [Ban(str(ban_id), *fields) for ban_id, *fields in rows if fields[-1] is None or fields[-1] > now]

    def lift_ban(self, ban_id: int, now: str) -> bool:
        ban = self._ban
        with self._database.atomic():
            self._drop_expired_bans(now)
            return int(ban.delete().where(ban.id == ban_id).execute()) > 0

    def _drop_expired_bans(self, now: str) -> None:
        ban = self._ban
        ban.delete().where(ban.expires.is_null(False) & (ban.expires <= now)).execute()

    def set_locked(self, label: str, locked: bool) -> bool:
        """Lock or unlock a room; whether that changed anything."""
        lock = self._lock
        with self._database.atomic():
            if not locked:
                return int(lock.delete().where(lock.label == label).execute()) > 0
            if lock.select().where(lock.label == label).exists():
                return False
            lock.insert(label=label).on_conflict_ignore().execute()
            return True

    def locked_rooms(self) -> frozenset[str]:
        lock = self._lock
        return frozenset(str(label) for (label,) in select_rows(lock.select(lock.label)))

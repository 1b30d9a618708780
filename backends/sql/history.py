"""The SQL backend's reads of history: pages, replays, the newest id and the busiest rooms.

Run on the reader threads, beside the writer and never behind it.
"""

from __future__ import annotations

from typing import Any

import peewee

from backends.base import HistoryPage, Replay, RoomSummary
from backends.changes import MessageChange
from backends.sql.changes import MESSAGE_COLUMNS, ChangeStore, stored_message
from backends.sql.database import RoomsDatabase, execute, select_rows


class HistoryReader:
    def __init__(self, database: RoomsDatabase) -> None:
        self.db = database.db
        self._room, self._msg = database.tables.room, database.tables.message
        self._timestamp = database.timestamp
        self._changes = ChangeStore(database)

    def history_query(self, room_id: int, limit: int, before_id: int | None, after_id: int | None) -> peewee.Select:
        """Up to ``limit`` rows: the oldest after ``after_id``, else the newest (before ``before_id``)."""
        msg = self._msg
        query = msg.select(
            msg.id,
            msg.handle,
            msg.message,
            msg.timestamp,
            msg.client_id,
            msg.user_id,
            msg.moderator,
            msg.reply_to,
            msg.author,
            msg.edited,
            msg.reactions,
        )
        query = query.where((msg.room == room_id) & (msg.deleted == 0))
        if after_id is not None:
            return query.where(msg.id > after_id).order_by(msg.id).limit(limit)
        if before_id is not None:
            query = query.where(msg.id < before_id)
        return query.order_by(msg.id.desc()).limit(limit)

    def history(self, label: str, limit: int, before_id: int | None, after_id: int | None) -> HistoryPage:
        # The room's id first, then its messages by that id: the planner then knows which room it reads
        # and walks its (room_id, id) index. Joined on the label instead, PostgreSQL may walk every room's
        # messages newest first and filter, which for a quiet room beside a busy one reads nearly all.
        room = self._room
        room_id = room.select(room.id).where(room.label == label).scalar()
        if room_id is None:
            return HistoryPage([], False)
        # One row more than asked for tells whether more exist in that direction.
        rows = list(self.history_query(room_id, limit + 1, before_id, after_id).tuples())
        has_more = len(rows) > limit
        rows = rows[:limit] if after_id is not None else rows[:limit][::-1]
        return HistoryPage([stored_message(label, row) for row in rows], has_more)

    def replay(self, label: str, since_id: int, limit: int, origin: int | None = None) -> Replay:
        """What a client that last saw ``since_id`` missed: its first page and the room's bounds, in one
        statement, so from one snapshot of the database whatever a prune (or expiry) commits meanwhile. A
        prune moves ``pruned_through`` in the transaction that deletes, so the page misses a message after
        ``since_id`` exactly when ``pruned_through`` lies past it: a gap, and never one otherwise."""
        param = self.db.param
        columns = MESSAGE_COLUMNS.format(ts=self._timestamp).split(", ")
        sql = (
            "SELECT rooms.pruned_through, (SELECT MAX(id) FROM messages WHERE room_id = rooms.id), "
            + ", ".join(f"missed.{column}" for column in columns)
            + f" FROM rooms LEFT JOIN (SELECT {', '.join(columns)} FROM messages"
            f" WHERE room_id = (SELECT id FROM rooms WHERE label = {param}) AND id > {param} AND deleted = 0"
            f" ORDER BY id LIMIT {param}) missed ON 1 = 1 WHERE rooms.label = {param}"
        )
        # Each row: pruned_through, the newest id (retention always keeps it, a tombstone too), a message of
        # the page (NULLs for none). One more than asked for tells whether more follow; unordered: sorted here.
        rows = sorted(execute(self.db, sql, [label, since_id, limit + 1, label]), key=_row_id)
        pruned_through, newest = (int(rows[0][0]), int(rows[0][1] or 0)) if rows else (0, 0)
        if since_id > newest:
            # The client saw an id this room never had: the database was replaced under it.
            return Replay(gap=True, after="0", page=self.history(label, limit, None, 0))
        found = [row[2:] for row in rows if row[2] is not None]  # else the room's row alone: nothing after since_id
        page = HistoryPage([stored_message(label, row) for row in found[:limit]], len(found) > limit)
        changes: tuple[MessageChange, ...] = ()
        if origin is not None:
            # Read after the page (a change made between the two is told again live: the same frame twice,
            # never one missed); up to where the page ends, so the next page's read goes on from there.
            through = int(page.messages[-1].id) if page.has_more else None
            changes = self._changes.changes(label, since_id, through, origin)
        return Replay(gap=since_id < pruned_through, after=str(since_id), page=page, changes=changes)

    def newest_id(self) -> int:
        """The greatest message id stored in any room (0 for none); every id issued later is greater."""
        msg = self._msg
        return int(msg.select(peewee.fn.MAX(msg.id)).scalar() or 0)

    def busiest(self, limit: int) -> list[RoomSummary]:
        room = self._room
        query = (
            room.select(room.label, room.message_count, room.last_active)
            .where(room.message_count > 0)
            .order_by(room.message_count.desc(), room.label)
            .limit(limit)
        )
        return [RoomSummary(label, int(count), last_active) for label, count, last_active in select_rows(query)]


def _row_id(row: tuple[Any, ...]) -> int:
    """A replay row's message id (-1 for the room's row alone, with none)."""
    return -1 if row[2] is None else int(row[2])

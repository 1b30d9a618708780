"""The SQL backend's retention: pruning what a room no longer keeps, and removing the rooms left idle.

Run on the pruner's thread, in short transactions of their own beside the writer, so no sender waits.
"""

from __future__ import annotations

import peewee

from backends.sql.database import RoomsDatabase, select_rows

PRUNE_CHUNK = 500
EXPIRE_CHUNK = 500


class Retention:
    def __init__(self, database: RoomsDatabase, retain_per_room: int) -> None:
        self._database = database
        self._room, self._msg = database.tables.room, database.tables.message
        self._retain = retain_per_room

    def prune_room(self, room_id: int) -> None:
        """Delete what retention no longer keeps, in chunks, each its own short transaction."""
        msg, room = self._msg, self._room
        in_room = msg.room == room_id
        # Retention keeps messages, not tombstones: the cutoff counts the room's messages only.
        kept = msg.select(msg.id).where(in_room & (msg.deleted == 0)).order_by(msg.id.desc())
        cutoff = kept.offset(self._retain).limit(1).scalar()
        if cutoff is None:
            return
        while True:
            older = msg.select(msg.id).where(in_room & (msg.id <= cutoff)).order_by(msg.id)
            end = older.offset(PRUNE_CHUNK - 1).limit(1).scalar()
            through = cutoff if end is None else end
            with self._database.atomic():
                # ``pruned_through`` moves in the transaction that deletes, to the newest message (not
                # tombstone) deleted: a replay, which reads it with its page, then sees a gap exactly when
                # a message after its id is gone. It moves first: the room's row is then locked before any
                # message, as the writer locks it (MariaDB), and the two take turns instead of deadlocking.
                newest = msg.select(peewee.fn.MAX(msg.id)).where(in_room & (msg.id <= through) & (msg.deleted == 0))
                pruned_through = newest.scalar()
                if pruned_through is not None:
                    marked = (room.id == room_id) & (room.pruned_through < pruned_through)
                    room.update(pruned_through=pruned_through).where(marked).execute()
                msg.delete().where(in_room & (msg.id <= through)).execute()
                # The changes made since to the messages pruned go with them: found by a plain read, then
                # deleted by their ids, so that no range of the change_of index is locked (MariaDB would lock
                # the gap new messages are inserted into, and deadlock with the writer).
                orphans = [
                    row[0] for row in select_rows(msg.select(msg.id).where(in_room & (msg.change_of <= through)))
                ]
                if orphans:
                    msg.delete().where(msg.id.in_(orphans)).execute()
            if end is None or end >= cutoff:
                return

    def expire_rooms(self, idle_since: str) -> int:
        """Delete the rooms whose newest message is older than ``idle_since``, each with its messages in a
        transaction of its own that checks again, so a message stored meanwhile keeps its room."""
        msg, room = self._msg, self._room
        removed = 0
        while True:
            # A room with no last activity was written by a version of rooms that stored rooms on visiting.
            is_idle = (room.last_active < idle_since) | room.last_active.is_null()
            idle = room.select(room.id).where(is_idle).order_by(room.id).limit(EXPIRE_CHUNK)
            room_ids = [int(row[0]) for row in select_rows(idle)]
            for room_id in room_ids:
                with self._database.transaction():
                    if room.delete().where((room.id == room_id) & is_idle).execute():
                        msg.delete().where(msg.room == room_id).execute()
                        removed += 1
                self._database.rooms_removed += 1  # the writer forgets its room ids before its next batch
            if len(room_ids) < EXPIRE_CHUNK:
                return removed

"""The SQL backend's room log: edits, deletions and reactions, each a row of ``messages`` of its own.

A change is a row with ``deleted`` 2 (so no read of messages sees it): inserting it gives it the next id,
its position in the room's order, on every database. ``change_of`` names the message it changed and
``change_data`` what it says, as JSON. The message itself holds what it now stands as: its latest text
and ``edited``, and ``reactions``, JSON of each emoji (in the order they first came) with who reacted.

Every change runs on the writer thread (``backend.py``), in the writer's turn: in the transaction of the
stores queued around it, after those queued before it (``writer.py``), so changes commit (and are
delivered) in the order of their ids among the messages. Each makes all its checks before its first write,
so one refused has written nothing and the rest of the turn goes on, with no savepoint to take and release.
Reads run on the reader threads.
"""

from __future__ import annotations

import json
from typing import Any

from backends.base import StoredMessage
from backends.changes import MAX_REACTION_KINDS, ChangeKind, MessageChange, Reactions
from backends.errors import MessageNotFound, NotAuthor, TooManyReactions
from backends.sql.database import RoomsDatabase, execute
from backends.sql.tokens import search_words_for

CHANGE_ROW = 2  # ``messages.deleted`` of a change's row
# A message's columns as reads select them, in ``stored_message``'s order (``{ts}``: the quoted timestamp).
MESSAGE_COLUMNS = "id, handle, message, {ts}, client_id, user_id, moderator, reply_to, author, edited, reactions"

# Who reacted with each emoji, in the order the emoji first came.
_Reactors = list[tuple[str, list[str]]]


def stored_message(label: str, row: tuple[Any, ...]) -> StoredMessage:
    """A message from its ``MESSAGE_COLUMNS``."""
    message_id, handle, text, stamp, client_id, user, moderator, reply_to, author, edited, reactions = row
    return StoredMessage(
        str(message_id),
        label,
        handle,
        text,
        stamp,
        client_id,
        user,
        bool(moderator),
        None if reply_to is None else str(reply_to),
        author,
        edited,
        _counts(_reactors(reactions)),
    )


class ChangeStore:
    def __init__(self, database: RoomsDatabase) -> None:
        self._database = database
        self.db = database.db
        self._room, self._msg = database.tables.room, database.tables.message
        self._columns = MESSAGE_COLUMNS.format(ts=database.timestamp)
        # The statements of a reaction, written out: peewee's query builder cost more CPU than SQLite's own
        # work (as for the writer's batches), and a reaction is as frequent as a message in a busy room.
        param = self.db.param
        self._set_reactions = f"UPDATE messages SET reactions = {param} WHERE id = {param}"
        self._insert_change = (
            f"INSERT INTO messages (room_id, handle, message, {database.timestamp}, deleted, change_of, change_data)"
            f" VALUES ({', '.join([param] * 7)})" + (" RETURNING id" if database.kind == "postgresql" else "")
        )
        self._search_words = search_words_for(database.kind)

    # -- reads (reader threads) -------------------------------------------------------------------

    def message(self, label: str, message_id: int) -> StoredMessage | None:
        param = self.db.param
        sql = (
            f"SELECT {self._columns} FROM messages WHERE id = {param} AND deleted = 0"
            f" AND room_id = (SELECT id FROM rooms WHERE label = {param})"
        )
        row = execute(self.db, sql, [message_id, label]).fetchone()
        return None if row is None else stored_message(label, row)

    def changes(self, label: str, after: int, through: int | None, origin: int) -> tuple[MessageChange, ...]:
        """The changes after ``after`` (up to ``through``; None: the newest) to messages at or before ``origin``."""
        param = self.db.param
        sql = (
            f"SELECT id, change_of, change_data FROM messages WHERE room_id = (SELECT id FROM rooms WHERE label ="
            f" {param}) AND deleted = {CHANGE_ROW} AND id > {param} AND change_of <= {param}"
        )
        params: list[object] = [label, after, origin]
        if through is not None:
            sql += f" AND id <= {param}"
            params.append(through)
        rows = sorted(execute(self.db, sql + " ORDER BY id", params))
        return tuple(_change(label, at, of, data) for at, of, data in rows)

    # -- changes (the writer thread) --------------------------------------------------------------

    def edit(self, label: str, message_id: int, text: str, edited: str, authors: frozenset[str]) -> MessageChange:
        room_id, author, _ = self._found(label, message_id)
        if author is None or author not in authors:
            raise NotAuthor("only its author may edit this message")
        msg = self._msg
        # Its words go with its text: a search finds the message by its current text only.
        words = self._search_words(room_id, text)
        msg.update(message=text, edited=edited, search_words=words).where(msg.id == message_id).execute()
        change = MessageChange(label, str(message_id), "", ChangeKind.EDIT, message=text, edited=edited)
        return self._log(room_id, change, edited)

    def react(self, label: str, message_id: int, reactor: str, emoji: str, on: bool, now: str) -> MessageChange | None:
        room_id, _, stored = self._found(label, message_id)
        reactors = _reactors(stored)
        who = next((users for symbol, users in reactors if symbol == emoji), None)
        if on:
            if who is not None and reactor in who:
                return None
            if who is None:
                if len(reactors) >= MAX_REACTION_KINDS:
                    raise TooManyReactions(f"a message has at most {MAX_REACTION_KINDS} different reactions")
                reactors.append((emoji, who := []))
            who.append(reactor)
        else:
            if who is None or reactor not in who:
                return None
            who.remove(reactor)
            reactors = [(symbol, users) for symbol, users in reactors if users]
        encoded = json.dumps(reactors, ensure_ascii=False) if reactors else None
        execute(self.db, self._set_reactions, [encoded, message_id])
        counts = _counts(reactors)
        return self._log(
            room_id, MessageChange(label, str(message_id), "", ChangeKind.REACTIONS, reactions=counts), now
        )

    def delete(self, label: str, message_id: int, authors: frozenset[str] | None, now: str) -> MessageChange | None:
        """Make the message a tombstone (see ``migrations._migrate_to_4``) and count it out of its room's
        messages; its earlier changes go (a replay tells only that it is gone). None: no such message."""
        try:
            room_id, author, _ = self._found(label, message_id)
        except MessageNotFound:
            return None
        if authors is not None and author not in authors:
            raise NotAuthor("only its author may delete this message")
        msg, room = self._msg, self._room
        gone = dict(
            deleted=1,
            handle="",
            message="",
            user_id=None,
            author=None,
            edited=None,
            reactions=None,
            search_words=None,
        )
        msg.update(**gone).where(msg.id == message_id).execute()
        room.update(message_count=room.message_count - 1).where(room.id == room_id).execute()
        msg.delete().where((msg.change_of == message_id) & (msg.deleted == CHANGE_ROW)).execute()
        return self._log(room_id, MessageChange(label, str(message_id), "", ChangeKind.DELETE), now)

    def _found(self, label: str, message_id: int) -> tuple[int, str | None, str | None]:
        """The room's id, and the message's author and reactions; ``MessageNotFound`` if the room holds none."""
        param = self.db.param
        sql = (
            f"SELECT room_id, author, reactions FROM messages WHERE id = {param} AND deleted = 0"
            f" AND room_id = (SELECT id FROM rooms WHERE label = {param})"
        )
        row = execute(self.db, sql + self._database.for_update, [message_id, label]).fetchone()
        if row is None:
            raise MessageNotFound(f"this room holds no message {message_id}")
        return int(row[0]), row[1], row[2]

    def _log(self, room_id: int, change: MessageChange, stamp: str) -> MessageChange:
        """Insert the change's own row, which gives it its position."""
        data: dict[str, Any] = {"kind": change.kind.value}
        if change.kind is ChangeKind.EDIT:
            data.update(message=change.message, edited=change.edited)
        elif change.kind is ChangeKind.REACTIONS:
            data.update(reactions=[list(pair) for pair in change.reactions])
        values = [room_id, "", "", stamp, CHANGE_ROW, int(change.id), json.dumps(data, ensure_ascii=False)]
        cursor = execute(self.db, self._insert_change, values)
        returned = cursor.fetchone() if self._database.kind == "postgresql" else (cursor.lastrowid,)
        assert returned is not None  # an INSERT's RETURNING gives its row
        return change._replace(at=str(returned[0]))


def _reactors(stored: str | None) -> _Reactors:
    return [] if not stored else [(symbol, list(users)) for symbol, users in json.loads(stored)]


def _counts(reactors: _Reactors) -> Reactions:
    return tuple((symbol, len(users)) for symbol, users in reactors if users)


def _change(label: str, at: int, of: int, data: str) -> MessageChange:
    fields = json.loads(data)
    kind = ChangeKind(fields["kind"])
    reactions = tuple((symbol, int(count)) for symbol, count in fields.get("reactions", ()))
    return MessageChange(label, str(of), str(at), kind, fields.get("message"), fields.get("edited"), reactions)

"""The SQL backend's writes of messages: a batch in one transaction (group commit), on the writer thread.

:class:`MessageWriter` stores what one loop iteration queued, deduplicates client ids, refuses new rooms
past an address's quota, keeps each room's count, and holds what it needs between batches (room ids,
what is due for pruning). The changes to messages queued among the stores (``changes.py``) are made in the
same transaction, each in its place among them. Every method runs on the one writer thread (see
``backend.py``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import peewee

from backends.base import AddressQuota, NewMessage, StoredMessage, StoreResult, utc_timestamp
from backends.changes import MessageChange
from backends.errors import (
    MessageDeleted,
    MessageNotFound,
    NotAuthor,
    QuotaExceeded,
    ReplyToMissing,
    TooManyReactions,
)
from backends.quota import NewRoomQuota
from backends.sql.changes import MESSAGE_COLUMNS, stored_message
from backends.sql.database import RoomsDatabase, execute, select_rows
from backends.sql.tokens import search_words_for

# Room ids the writer keeps; past this it starts again (one SELECT per room of its next batches).
MAX_CACHED_ROOMS = 10_000
# What a batch's message came to: stored (or found stored), or refused (its sender's quota, or its
# client id names a message a moderator deleted).
StoreOutcome = StoreResult | QuotaExceeded | MessageDeleted | ReplyToMissing
# A change to a message, made by a query of ``changes.py``: the change, or None when nothing changed.
Change = Callable[[], MessageChange | None]
# What a change came to: made, nothing to change, or refused (and rolled back to before it).
ChangeOutcome = MessageChange | None | MessageNotFound | NotAuthor | TooManyReactions
CHANGE_REFUSALS = (MessageNotFound, NotAuthor, TooManyReactions)
# What a turn of the writer's is made of, in order: batches of stores, and changes between them.
TurnPart = list[NewMessage] | Change
# A client id's earlier message, or None for one a moderator deleted (its tombstone).
_Earlier = dict[tuple[str, str], StoredMessage | None]
# The columns a message may leave at their defaults, in ``_optional_values``'s order, and those defaults.
_OPTIONAL_COLUMNS = ("client_id", "user_id", "moderator", "reply_to", "author")
_OPTIONAL_DEFAULTS = (None, None, False, None, None)
# MariaDB's error for a transaction it rolled back to break a deadlock, and how often a batch is written again.
_DEADLOCK = 1213
DEADLOCK_RETRIES = 3


class MessageWriter:
    # The batch UPDATE's "WHEN <room id> THEN <value>"; rooms' drivers write the values into the statement.
    count_case = last_active_case = "WHEN {p} THEN {p}"

    def __init__(self, database: RoomsDatabase, retain_per_room: int, quota: AddressQuota | None = None) -> None:
        self._database = database
        self.db = database.db
        self.kind = database.kind
        self._room, self._msg = database.tables.room, database.tables.message
        self._retain = retain_per_room
        self._prune_every = max(1, retain_per_room // 10)
        # MySQL hands a multi-row INSERT consecutive ids when innodb_autoinc_lock_mode is 0 or 1;
        # PostgreSQL and SQLite say which ids they gave with RETURNING.
        self._consecutive_ids = False
        self._one_statement = database.counts_by_trigger
        self._timestamp = database.timestamp
        self._search_words = search_words_for(database.kind)
        # Writer thread only: label -> rooms.id; messages since a room's last prune. Both are forgotten when
        # they grow past MAX_CACHED_ROOMS or rooms were removed (``RoomsDatabase.rooms_removed``).
        self._room_ids: dict[str, int] = {}
        self._unpruned: dict[int, int] = {}
        self._removals_seen = 0
        self._new_rooms = NewRoomQuota(quota)

    def prepare(self) -> None:
        """Learn how the database hands out ids, once it can be asked (at start, after the schema)."""
        if self.kind == "mysql":
            mode = execute(self.db, "SELECT @@innodb_autoinc_lock_mode").fetchone()
            self._consecutive_ids = mode is not None and int(mode[0]) in (0, 1)

    def write_turn(self, parts: Sequence[TurnPart]) -> list[list[StoreOutcome] | ChangeOutcome]:
        """Store the batches and make the changes of one turn, in their order, in one transaction (on
        SQLite a turn of stores alone is their one statement); what each part came to, in order."""
        removals = self._database.rooms_removed
        if removals != self._removals_seen or len(self._room_ids) > MAX_CACHED_ROOMS:
            self._removals_seen = removals
            self._room_ids.clear()
            self._unpruned.clear()
        stores_alone = all(isinstance(part, list) for part in parts)
        retried_integrity = retried_connection = False
        deadlocks = 0
        while True:
            reused_connection = not self.db.is_closed()
            room_ids: dict[str, int] = {}
            committing = False
            try:
                with self._database.transaction() if stores_alone else self._database.atomic():
                    results = [self._write(part, room_ids) if isinstance(part, list) else _made(part) for part in parts]
                    committing = True
            except peewee.IntegrityError:
                # Another process stored one of these client ids first, or a cached room id is stale.
                if retried_integrity:
                    raise
                retried_integrity = True
                self._room_ids.clear()
                continue
            except (peewee.OperationalError, peewee.InterfaceError) as exc:
                if _is_deadlock(exc) and deadlocks < DEADLOCK_RETRIES:
                    # MariaDB broke a deadlock (with a pruner holding the gap before the next room's messages)
                    # by rolling this whole transaction back: nothing was stored, so the batch is written again.
                    deadlocks += 1
                    continue
                # A connection that died while idle (server restarted, link cut) fails before COMMIT, so
                # nothing was stored: try once more on a new one. A failure at COMMIT may have stored the
                # batch, and a fresh connection that fails means the server is down: no retry then.
                if committing or not reused_connection or retried_connection:
                    raise
                retried_connection = True
                self._database.drop_connection()
                continue
            self._room_ids.update(room_ids)  # only ids of committed rows are cached
            return results

    def _write(self, batch: list[NewMessage], room_ids: dict[str, int]) -> list[StoreOutcome]:
        refused = self._resolve_rooms(batch, room_ids)
        results: list[StoreOutcome | None] = [None] * len(batch)
        earlier = self._stored_client_ids(room_ids, batch)
        fresh: list[tuple[int, NewMessage]] = []
        first_in_batch: dict[tuple[str, str], int] = {}
        repeats: list[tuple[int, int]] = []
        for index, request in enumerate(batch):
            if index in refused:
                results[index] = refused[index]
                continue
            if request.client_id is not None:
                key = (request.room, request.client_id)
                if key in earlier:
                    prior = earlier[key]
                    results[index] = StoreResult(prior, duplicate=True) if prior is not None else _deleted_resend()
                    continue
                if key in first_in_batch:
                    repeats.append((index, first_in_batch[key]))
                    continue
                first_in_batch[key] = index
            fresh.append((index, request))
        if any(request.reply_to is not None for _, request in fresh):
            missing = self._missing_replies(room_ids, fresh)
            for index in missing:
                results[index] = ReplyToMissing(f"this room holds no message {batch[index].reply_to}")
            fresh = [(index, request) for index, request in fresh if index not in missing]
        if fresh and not self._one_statement:
            # Before the INSERT: on MariaDB the new rows' foreign key takes their room's row shared, and an
            # UPDATE after it, wanting the row exclusive, deadlocks with the pruner's UPDATE of pruned_through
            # waiting for it. Taken exclusive first, the row is the writer's or the pruner's, one at a time.
            stored_per_room = Counter(room_ids[request.room] for _, request in fresh)
            self._count_messages(stored_per_room, {room_ids[request.room]: request.timestamp for _, request in fresh})
        ids = self._insert_messages([(room_ids[request.room], request) for _, request in fresh])
        for (index, request), message_id in zip(fresh, ids, strict=True):
            results[index] = StoreResult(
                StoredMessage(
                    str(message_id),
                    request.room,
                    request.handle,
                    request.message,
                    request.timestamp,
                    request.client_id,
                    request.user,
                    request.moderator,
                    request.reply_to,
                    request.author,
                )
            )
        for index, first in repeats:
            first_result = results[first]
            assert isinstance(first_result, StoreResult)
            results[index] = StoreResult(first_result.message, duplicate=True)
        return [result for result in results if result is not None]

    def _resolve_rooms(
        self, batch: list[NewMessage], room_ids: dict[str, int]
    ) -> dict[int, QuotaExceeded | ReplyToMissing]:
        """Fill ``room_ids`` for the batch's rooms, writing the new ones whose senders may make them; the
        messages refused for it, by their index in the batch."""
        labels = {request.room for request in batch}
        room_ids.update((label, self._room_ids[label]) for label in labels if label in self._room_ids)
        if labels - room_ids.keys():
            room_ids.update(self._select_room_ids(labels - room_ids.keys()))
        missing = labels - room_ids.keys()
        refused: dict[int, QuotaExceeded | ReplyToMissing] = {}
        if not missing:
            return refused
        admitted: set[str] = set()
        for index, request in enumerate(batch):
            if request.room in missing and request.reply_to is not None:
                # A room with no history holds nothing to reply to: refused, and no room is made for it.
                refused[index] = ReplyToMissing(f"this room holds no message {request.reply_to}")
            elif request.room in missing and request.room not in admitted:
                try:
                    self._new_rooms.charge(request.sender)
                    admitted.add(request.room)
                except QuotaExceeded as exc:
                    refused[index] = exc
        if admitted:
            created = utc_timestamp()
            rows = [{"label": label, "created": created} for label in sorted(admitted)]
            self._room.insert_many(rows).on_conflict_ignore().execute()
            room_ids.update(self._select_room_ids(admitted))
        return refused

    def _select_room_ids(self, labels: set[str]) -> dict[str, int]:
        room = self._room
        query = room.select(room.label, room.id).where(room.label.in_(sorted(labels)))
        return {str(label): int(room_id) for label, room_id in select_rows(query)}

    # The three statements of every batch are written out rather than built by peewee's query builder,
    # which cost more CPU per message than SQLite itself: measured in-process with 500 stores in flight,
    # 88 us of CPU per message with the builder, 42 us written out (memory backend: 13 us).

    def _stored_client_ids(self, room_ids: dict[str, int], stores: list[NewMessage]) -> _Earlier:
        wanted_rooms = sorted({room_ids[request.room] for request in stores if request.client_id is not None})
        if not wanted_rooms:
            return {}
        wanted_ids = sorted({request.client_id for request in stores if request.client_id is not None})
        sql = (
            f"SELECT room_id, deleted, {MESSAGE_COLUMNS.format(ts=self._timestamp)}"
            f" FROM messages WHERE room_id IN ({self._params(len(wanted_rooms))})"
            f" AND client_id IN ({self._params(len(wanted_ids))})"
        )
        labels = {room_id: label for label, room_id in room_ids.items()}
        found: _Earlier = {}
        for room_id, deleted, *columns in execute(self.db, sql, [*wanted_rooms, *wanted_ids]):
            message = stored_message(labels[room_id], tuple(columns))
            found[(message.room, message.client_id or "")] = None if deleted else message
        return found

    def _missing_replies(self, room_ids: dict[str, int], fresh: list[tuple[int, NewMessage]]) -> set[int]:
        """The indexes of the batch's messages that reply to a message their room does not hold."""
        wanted = {(room_ids[request.room], int(request.reply_to or 0)) for _, request in fresh if _replies(request)}
        held: set[tuple[int, int]] = set()
        if wanted:
            ids = sorted({message_id for _, message_id in wanted})
            sql = f"SELECT room_id, id FROM messages WHERE deleted = 0 AND id IN ({self._params(len(ids))})"
            held = {(int(room_id), int(message_id)) for room_id, message_id in execute(self.db, sql, ids)}
        return {
            index
            for index, request in fresh
            if request.reply_to is not None
            and (not _replies(request) or (room_ids[request.room], int(request.reply_to or 0)) not in held)
        }

    def _insert_messages(self, rows: list[tuple[int, NewMessage]]) -> list[int]:
        """Insert in order; return the ids given, in the same order."""
        if not rows:
            return []
        search_words = self._search_words
        extras = [_optional_values(request) for _, request in rows]
        # A value bound as None or a bool costs Python's sqlite3 an AttributeError raised and cleared (it
        # looks for an adapter): the optional columns no message of the batch sets keep their defaults.
        named = [n for n, default in enumerate(_OPTIONAL_DEFAULTS) if any(extra[n] is not default for extra in extras)]
        columns = (
            f"INSERT INTO messages (room_id, handle, message, {self._timestamp}, search_words"
            + "".join(f", {_OPTIONAL_COLUMNS[n]}" for n in named)
            + ") VALUES "
        )
        width = 5 + len(named)
        row_params = f"({self._params(width)})"
        values: list[object] = []
        for (room_id, request), extra in zip(rows, extras, strict=True):
            values += (
                room_id,
                request.handle,
                request.message,
                request.timestamp,
                search_words(room_id, request.message),
            )
            if named:
                values += [extra[n] for n in named]
        all_rows = columns + ", ".join([row_params] * len(rows))
        if self.kind == "sqlite":
            # The one writer holds the write lock, and each row of an INSERT takes the largest rowid plus
            # one, so the ids are consecutive up to the last one. (RETURNING would step row by row, and
            # each step gives the GIL away and waits to get it back from the event loop.)
            last = int(execute(self.db, all_rows, values).lastrowid)
            return list(range(last - len(rows) + 1, last + 1))
        if self.kind == "postgresql":
            # Ids are drawn in VALUES order; sorting makes no assumption about the order RETURNING uses.
            return sorted(row[0] for row in execute(self.db, all_rows + " RETURNING id", values))
        if self._consecutive_ids:
            # MySQL reports the first id of a multi-row INSERT.
            first = int(execute(self.db, all_rows, values).lastrowid)
            return list(range(first, first + len(rows)))
        return [
            int(execute(self.db, columns + row_params, values[n : n + width]).lastrowid)
            for n in range(0, len(values), width)
        ]

    def _count_messages(self, stored_per_room: Counter[int], last_active: dict[int, str]) -> None:
        """One UPDATE for every room of the batch: its message count and last activity."""
        room_ids = sorted(stored_per_room)
        counts = " ".join(self.count_case.format(p=self.db.param) for _ in room_ids)
        times = " ".join(self.last_active_case.format(p=self.db.param) for _ in room_ids)
        sql = (
            f"UPDATE rooms SET message_count = message_count + CASE id {counts} END,"
            f" last_active = CASE id {times} END WHERE id IN ({self._params(len(room_ids))})"
        )
        params: list[Any] = [value for room_id in room_ids for value in (room_id, stored_per_room[room_id])]
        params += [value for room_id in room_ids for value in (room_id, last_active[room_id])]
        execute(self.db, sql, [*params, *room_ids])

    def _params(self, count: int) -> str:
        return ", ".join([self.db.param] * count)

    def rooms_due_for_pruning(self, results: list[StoreOutcome]) -> list[int]:
        """After a committed batch: the rooms that grew by a tenth of what they keep since last pruned.

        A room's first write after start counts as due, in case retention was lowered while stopped.
        """
        if self._retain <= 0:
            return []
        stored = Counter(
            self._room_ids[result.message.room]
            for result in results
            if isinstance(result, StoreResult) and not result.duplicate
        )
        due_rooms = []
        for room_id, count in stored.items():
            due = self._unpruned.get(room_id, self._prune_every) + count
            self._unpruned[room_id] = 0 if due >= self._prune_every else due
            if due >= self._prune_every:
                due_rooms.append(room_id)
        return due_rooms


def _made(change: Change) -> ChangeOutcome:
    """A change made in its place in the turn: a refused one has written nothing (``changes.py``)."""
    try:
        return change()
    except CHANGE_REFUSALS as refusal:
        return refusal


def _optional_values(request: NewMessage) -> tuple[object, ...]:
    reply_to = None if request.reply_to is None else int(request.reply_to)
    return (request.client_id, request.user, request.moderator, reply_to, request.author)


def _replies(request: NewMessage) -> bool:
    """Whether a message replies to an id this store could have issued (any other names no message)."""
    reply_to = request.reply_to
    return reply_to is not None and reply_to.isascii() and reply_to.isdigit() and 0 < int(reply_to) < 2**63


def _deleted_resend() -> MessageDeleted:
    return MessageDeleted("a moderator deleted the message with this client_id; it is not stored again")


def _is_deadlock(error: peewee.PeeweeException) -> bool:
    """peewee's error carries the driver's arguments: pymysql's error code first."""
    return bool(error.args) and error.args[0] == _DEADLOCK

"""The SQL backend's database: its connections (one per thread), its statements typed, and the turns and
transactions the threads that write take."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

import peewee
from playhouse import db_url

from backends.errors import BackendConfigError
from backends.sql.options import kind_of
from backends.sql.tables import Schema

SQLITE_BUSY_TIMEOUT_SECONDS = 5
SERVER_CONNECT_TIMEOUT_SECONDS = 5


class Cursor(Protocol):
    """The DB-API cursor ``execute`` returns, as far as rooms uses it."""

    @property
    def lastrowid(self) -> int: ...

    @property
    def rowcount(self) -> int: ...

    @property
    def description(self) -> Sequence[Sequence[Any]]: ...

    def fetchone(self) -> tuple[Any, ...] | None: ...

    def __iter__(self) -> Iterator[tuple[Any, ...]]: ...


def execute(database: peewee.Database, sql: str, params: Sequence[object] = ()) -> Cursor:
    """peewee's ``execute_sql``, typed (peewee's own stubs leave it untyped)."""
    cursor: Cursor = database.execute_sql(sql, list(params))  # type: ignore[no-untyped-call]
    return cursor


def select_rows(query: peewee.Select) -> list[tuple[Any, ...]]:
    """A query's rows as tuples."""
    return list(query.tuples())


def open_database(url: str, synchronous: str = "full") -> peewee.Database:
    """A peewee database for ``url`` (see ``options.py`` for ``synchronous``); nothing connects until a
    query runs.

    Each worker thread opens its own, so a connection is only ever used by the thread that made it.
    """
    parts = urlsplit(url)
    kind = kind_of(url)
    options: dict[str, Any] = {}
    if kind == "sqlite":
        # WAL lets readers run beside the one writer; ``synchronous`` is one of ``options.SYNCHRONOUS_LEVELS``.
        options["pragmas"] = {"journal_mode": "wal", "synchronous": synchronous.upper(), "foreign_keys": 1}
        options["timeout"] = SQLITE_BUSY_TIMEOUT_SECONDS
        # Connections are closed at shutdown by the thread that stops the workers.
        options["check_same_thread"] = False
    else:
        if "connect_timeout" not in parts.query:
            options["connect_timeout"] = SERVER_CONNECT_TIMEOUT_SECONDS
        if kind == "mysql":
            # TEXT holds 65535 bytes; a long message of 4-byte characters must not fail its whole batch.
            options["field_types"] = {"TEXT": "MEDIUMTEXT"}
    normalized = kind + url[len(parts.scheme) :]
    try:
        database: peewee.Database = db_url.connect(normalized, unquote_password=True, unquote_user=True, **options)
    except ValueError as exc:
        raise BackendConfigError(f"backend.url: {exc}") from None
    return database


def counts_by_trigger(database: peewee.Database) -> bool:
    """Whether the database keeps each room's message count itself (schema version 2, SQLite)."""
    return isinstance(database, peewee.SqliteDatabase)


class RoomsDatabase:
    """One database as the backend's threads share it: each thread queries on a connection of its own,
    and the threads that write (the writer, the pruner) take turns where the database needs them."""

    def __init__(self, database: peewee.Database, tables: Schema, kind: str) -> None:
        self.db = database
        self.tables = tables
        self.kind = kind
        # The writer and the pruner take turns on SQLite here, rather than at the file lock, whose busy
        # handler sleeps; the servers lock rows, so they need no turns.
        self._write_lock: contextlib.AbstractContextManager[Any] = (
            threading.Lock() if kind == "sqlite" else contextlib.nullcontext()
        )
        # SQLite stores a batch in one statement, committed on its own (its trigger keeps the room counts);
        # the servers run a transaction of an INSERT and an UPDATE.
        self.counts_by_trigger = counts_by_trigger(database)
        self.timestamp = "".join((database.quote[0], "timestamp", database.quote[1]))  # a keyword in some SQL
        # Locks a row read for a change against a prune or expiry beside it (SQLite's writers take turns).
        self.for_update = "" if kind == "sqlite" else " FOR UPDATE"
        # Rooms expiry removed (pruner thread); when it moves, the writer forgets the room ids it keeps.
        self.rooms_removed = 0

    def drop_connection(self) -> None:
        """Close this thread's connection; the next query on the thread connects again."""
        try:
            self.db.close()
        except Exception:
            # A broken connection may fail even to close: forget it.
            self.db.dispose()

    def ping(self) -> None:
        execute(self.db, "SELECT 1").fetchone()

    def transaction(self) -> contextlib.AbstractContextManager[Any]:
        """The writer's turn: a transaction, or on SQLite the one statement it commits alone (the write lock
        alone, held directly: every batch of stores takes it)."""
        return self._write_lock if self.counts_by_trigger else self.atomic()

    def atomic(self) -> contextlib.AbstractContextManager[Any]:
        """A turn with a transaction of several statements, on every database."""
        return self._locked_transaction() if self.kind == "sqlite" else self.db.atomic()

    @contextlib.contextmanager
    def _locked_transaction(self) -> Iterator[None]:
        with self._write_lock, self.db.atomic():
            yield

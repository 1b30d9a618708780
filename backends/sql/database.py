"""Connections to the SQL backend's database, and its statements typed."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

import peewee
from playhouse import db_url

from backends.errors import BackendConfigError
from backends.sql.options import kind_of

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
    """A peewee database for ``url``; nothing connects until a query runs.

    Each worker thread opens its own, so a connection is only ever used by the thread that made it.
    """
    parts = urlsplit(url)
    kind = kind_of(url)
    options: dict[str, Any] = {}
    if kind == "sqlite":
        if synchronous not in ("full", "normal"):
            raise BackendConfigError(f"backend.sqlite_synchronous: {synchronous!r} is not one of full, normal")
        # WAL lets readers run beside the one writer; FULL syncs the WAL at every commit, so an
        # acknowledged message survives a power loss (NORMAL: it survives a crash of rooms only).
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

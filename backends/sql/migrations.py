"""The SQL schema's versions: an empty database gets the tables, an older one is migrated in place.

``schema_version`` holds one row. Version 2: on SQLite, a trigger keeps the rooms' message counts.
Version 3: on MySQL, client ids compare trailing spaces too. Version 4: moderation (``messages.deleted``,
``bans``, ``locked_rooms``). Version 5: who sent a message (``messages.user_id``, ``messages.moderator``).
Version 6: the moderators' audit log (``audit_log``). Version 7: the room's log (``_migrate_message_log``).
"""

from __future__ import annotations

from collections.abc import Callable

import peewee

from backends.errors import BackendConfigError
from backends.sql.database import counts_by_trigger, execute
from backends.sql.tables import Schema, build_schema

SCHEMA_VERSION = 7


def prepare_schema(database: peewee.Database, schema: Schema) -> int:
    """Create the tables on an empty database, or migrate existing ones in place; return the version.

    Tables missing are created as this release has them (an empty database gets them all, an older one
    the tables added since), and then every migration runs from the version found, the same path for
    both: so each migration is written to find its change made already. A database written by a newer
    release is refused rather than guessed at.
    """
    with database.atomic():
        database.create_tables(schema.models, safe=True)
        row = schema.version.select(schema.version.version).tuples().first()
        if row is None:
            schema.version.insert(version=1).execute()
            found = 1
        else:
            found = int(row[0])
        if found > SCHEMA_VERSION:
            raise BackendConfigError(
                f"backend.url: the database holds rooms schema version {found}; this release reads up to"
                f" version {SCHEMA_VERSION}"
            )
        for version in range(found + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[version](database)
            schema.version.update(version=version).execute()
    return SCHEMA_VERSION


def _migrate_to_2(database: peewee.Database) -> None:
    """SQLite counts each room's messages in a trigger, so that storing a batch is one statement.

    Each statement the writer thread runs gives the GIL away and must win it back from the event loop;
    with the count in the INSERT's own trigger, a batch is one round trip instead of four. The database
    servers keep one UPDATE per batch (row by row, a trigger would update a room's row once per message).
    """
    if counts_by_trigger(database):
        execute(
            database,
            "CREATE TRIGGER IF NOT EXISTS messages_count_in_room AFTER INSERT ON messages BEGIN"
            ' UPDATE rooms SET message_count = message_count + 1, last_active = NEW."timestamp"'
            " WHERE id = NEW.room_id; END",
        )


# Binary collations that compare trailing spaces (utf8mb4_bin pads them away): MariaDB's, then MySQL 8's.
NO_PAD_COLLATIONS = ("utf8mb4_nopad_bin", "utf8mb4_0900_bin")


def _migrate_to_3(database: peewee.Database) -> None:
    """MySQL compares client ids byte for byte, trailing spaces included.

    ``utf8mb4_bin`` is a PAD SPACE collation: its unique index took ``"c1 "`` for ``"c1"``, while the
    dedup lookup (compared in Python) did not, so storing the second failed its whole batch. Every other
    backend tells them apart, as the wire format does.
    """
    if not isinstance(database, peewee.MySQLDatabase):
        return
    names = ", ".join(f"'{name}'" for name in NO_PAD_COLLATIONS)
    found = {row[0] for row in execute(database, f"SHOW COLLATION WHERE Collation IN ({names})")}
    collation = next((name for name in NO_PAD_COLLATIONS if name in found), None)
    if collation is None:
        raise BackendConfigError(
            "backend.url: this MySQL server has no binary NO PAD collation (MariaDB 10.2+, MySQL 8)"
        )
    execute(
        database,
        f"ALTER TABLE messages MODIFY client_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE {collation} NULL",
    )


def _migrate_to_4(database: peewee.Database) -> None:
    """Moderation: ``messages.deleted`` marks a message a moderator deleted (``bans`` and
    ``locked_rooms`` are new tables, made by ``prepare_schema``).

    A deleted message stays as a tombstone rather than going: SQLite gives a new row the table's largest
    rowid plus one, so deleting the newest message would issue its id again, to a message every client
    that saw the deleted one would take for seen. The tombstone also keeps the room's newest id (a replay
    from the deleted id is no reset) and its ``client_id`` (a resend is refused, not stored again).
    Retention prunes tombstones with the messages around them.
    """
    if "deleted" not in _columns(database, "messages"):
        execute(database, "ALTER TABLE messages ADD COLUMN deleted SMALLINT NOT NULL DEFAULT 0")


def _migrate_to_5(database: peewee.Database) -> None:
    """Who sent a message: ``messages.user_id`` (a token's ``sub``, NULL for none) and
    ``messages.moderator`` (false for every message stored before).

    Each column is added as a new table declares it (its own DDL, so a migrated database and a new one
    are alike), unless it is there already. Both are nullable or have a default, so adding them rewrites
    no rows on PostgreSQL 11+, MariaDB 10.3+ and MySQL 8, and SQLite only edits its schema.
    """
    message = build_schema(database).message
    _add_columns(database, (message.user_id, message.moderator))


def _add_columns(database: peewee.Database, fields: tuple[peewee.Field, ...]) -> None:
    """Add each of ``fields`` to ``messages`` as a new table declares it, unless it is there already."""
    present = _columns(database, "messages")
    for field in fields:
        if field.column_name not in present:
            context = database.get_sql_context()
            column = field.ddl(context)
            ddl = peewee.NodeList(
                (peewee.SQL("ALTER TABLE"), peewee.Entity("messages"), peewee.SQL("ADD COLUMN"), column)
            )
            sql, params = context.sql(ddl).query()  # type: ignore[no-untyped-call]
            execute(database, sql, params)


def _migrate_to_6(database: peewee.Database) -> None:
    """The audit log: ``audit_log`` is a new table, made by ``prepare_schema`` as for every database, so
    there is nothing to change in the tables already there."""


def _migrate_message_log(database: peewee.Database) -> None:
    """The room's log: edits, deletions by their author, replies and reactions.

    ``messages`` gains ``author``, ``reply_to``, ``edited`` and ``reactions`` for a message, and
    ``change_of`` and ``change_data`` for a change, which is a row of its own (``deleted`` 2) so that it
    takes an id in the room's order; every column is nullable, so no row is rewritten. An index on
    ``change_of`` (made here: a table's model cannot declare one on a column an older table lacks) finds a
    message's changes. SQLite's count trigger counts messages only (no ``change_of``) from here on.
    """
    message = build_schema(database).message
    _add_columns(
        database,
        (message.author, message.reply_to, message.edited, message.reactions, message.change_of, message.change_data),
    )
    if "messages_change_of" not in {index.name for index in database.get_indexes("messages")}:
        execute(database, "CREATE INDEX messages_change_of ON messages (change_of)")
    if counts_by_trigger(database):
        execute(database, "DROP TRIGGER IF EXISTS messages_count_in_room")
        execute(
            database,
            "CREATE TRIGGER messages_count_in_room AFTER INSERT ON messages WHEN NEW.change_of IS NULL BEGIN"
            ' UPDATE rooms SET message_count = message_count + 1, last_active = NEW."timestamp"'
            " WHERE id = NEW.room_id; END",
        )


def _columns(database: peewee.Database, table: str) -> set[str]:
    """The names of a table's columns, lower case."""
    cursor = execute(database, f"SELECT * FROM {table} WHERE 1 = 0")
    return {str(column[0]).lower() for column in cursor.description}


MIGRATIONS: dict[int, Callable[[peewee.Database], None]] = {
    2: _migrate_to_2,
    3: _migrate_to_3,
    4: _migrate_to_4,
    5: _migrate_to_5,
    6: _migrate_to_6,
    7: _migrate_message_log,
}

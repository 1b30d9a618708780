"""The SQL schema's versions: an empty database gets the tables, an older one is migrated in place.

``schema_version`` holds one row. Version 2: on SQLite, a trigger keeps the rooms' message counts.
Version 3: on MySQL, client ids compare trailing spaces too. Version 4: moderation (``messages.deleted``,
``bans``, ``locked_rooms``). Version 5: who sent a message (``messages.user_id``, ``messages.moderator``).
Version 6: the moderators' audit log (``audit_log``). Version 7: search (``messages.search_words`` and each
engine's full-text index of it). Version 8: the room's log (``_migrate_message_log``). Version 9: SQLite's
search index made lighter (``_migrate_sqlite_index``).
"""

from __future__ import annotations

from collections.abc import Callable

import peewee

from backends.errors import BackendConfigError
from backends.sql.database import counts_by_trigger, execute
from backends.sql.tables import Schema, build_schema
from backends.sql.tokens import search_words

SCHEMA_VERSION = 9
# Messages given their search words per statement, as version 7 indexes those stored before it.
BACKFILL_CHUNK = 1000


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
    _add_columns(database, [message.user_id, message.moderator])


def _migrate_to_6(database: peewee.Database) -> None:
    """The audit log: ``audit_log`` is a new table, made by ``prepare_schema`` as for every database, so
    there is nothing to change in the tables already there."""


def _migrate_to_7(database: peewee.Database) -> None:
    """Search: ``messages.search_words``, each message's words as tokens (``backends/sql/tokens.py``), and
    the engine's full-text index of them: on SQLite an FTS5 table with ``messages`` as its external
    content, kept in step by triggers; on PostgreSQL a GIN index of ``to_tsvector('simple', ...)``; on
    MariaDB/MySQL an InnoDB FULLTEXT index. The messages stored before are given their words here, in
    place (on SQLite through the triggers, so the FTS5 table learns them too); tombstones get none.
    """
    if isinstance(database, peewee.SqliteDatabase):
        (fts5,) = execute(database, "SELECT sqlite_compileoption_used('ENABLE_FTS5')").fetchone() or (0,)
        if not fts5:
            raise BackendConfigError(
                "backend.url: this Python's SQLite library was built without FTS5, which searching needs"
            )
    _add_columns(database, [build_schema(database).message.search_words])
    if isinstance(database, peewee.SqliteDatabase):
        for statement in SQLITE_SEARCH_SCHEMA:
            execute(database, statement)
    _backfill_search_words(database)
    if isinstance(database, peewee.PostgresqlDatabase):
        execute(
            database,
            "CREATE INDEX IF NOT EXISTS messages_search_words ON messages"
            " USING GIN (to_tsvector('simple', search_words))",
        )
    elif isinstance(database, peewee.MySQLDatabase):
        if not list(execute(database, "SHOW INDEX FROM messages WHERE Key_name = 'messages_search_words'")):
            # Tokens are never stopwords (``backends/sql/tokens.py``); a server's own stopword table is not asked.
            execute(database, "SET SESSION innodb_ft_enable_stopword = OFF")
            execute(database, "ALTER TABLE messages ADD FULLTEXT INDEX messages_search_words (search_words)")


# The FTS5 table reads its text from ``messages`` (external content: stored once) and holds only the index;
# the triggers keep it in step with every insert, change and delete (prunes, expiry, moderators' deletions).
SQLITE_SEARCH_SCHEMA = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS message_words USING fts5(search_words, content='messages',"
    " content_rowid='id', tokenize='ascii')",
    "CREATE TRIGGER IF NOT EXISTS message_words_added AFTER INSERT ON messages"
    " WHEN NEW.search_words IS NOT NULL BEGIN"
    " INSERT INTO message_words (rowid, search_words) VALUES (NEW.id, NEW.search_words); END",
    "CREATE TRIGGER IF NOT EXISTS message_words_removed AFTER DELETE ON messages"
    " WHEN OLD.search_words IS NOT NULL BEGIN"
    " INSERT INTO message_words (message_words, rowid, search_words) VALUES ('delete', OLD.id, OLD.search_words);"
    " END",
    # Two triggers for a change: FTS5 takes a row out only if it holds it (a tombstone's NULL it never did,
    # nor a message from before version 7), and telling it to take out one it does not hold breaks it.
    "CREATE TRIGGER IF NOT EXISTS message_words_unset AFTER UPDATE OF search_words ON messages"
    " WHEN OLD.search_words IS NOT NULL BEGIN"
    " INSERT INTO message_words (message_words, rowid, search_words) VALUES ('delete', OLD.id, OLD.search_words);"
    " END",
    "CREATE TRIGGER IF NOT EXISTS message_words_set AFTER UPDATE OF search_words ON messages"
    " WHEN NEW.search_words IS NOT NULL BEGIN"
    " INSERT INTO message_words (rowid, search_words) VALUES (NEW.id, NEW.search_words); END",
)


def _backfill_search_words(database: peewee.Database) -> None:
    """Give every message stored without search words (before version 7) its words, a chunk at a time."""
    param = database.param
    while True:
        rows = list(
            execute(
                database,
                "SELECT id, room_id, message FROM messages WHERE search_words IS NULL AND deleted = 0"
                f" ORDER BY id LIMIT {BACKFILL_CHUNK}",
            )
        )
        for message_id, room_id, text in rows:
            execute(
                database,
                f"UPDATE messages SET search_words = {param} WHERE id = {param}",
                [search_words(room_id, text), message_id],
            )
        if len(rows) < BACKFILL_CHUNK:
            return


def _add_columns(database: peewee.Database, fields: list[peewee.Field]) -> None:
    """Add each column as a new table declares it (its own DDL, so a migrated database and a new one are
    alike), unless it is there already."""
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


def _migrate_message_log(database: peewee.Database) -> None:
    """The room's log: edits, deletions by their author, replies and reactions.

    ``messages`` gains ``author``, ``reply_to``, ``edited`` and ``reactions`` for a message, and
    ``change_of`` and ``change_data`` for a change, which is a row of its own (``deleted`` 2) so that it
    takes an id in the room's order; every column is nullable, so no row is rewritten. An index on
    ``change_of`` (made here: a table's model cannot declare one on a column an older table lacks) finds a
    message's changes. SQLite's count trigger counts messages only (no ``change_of``) from here on. A
    change's row holds no ``search_words``, so no full-text index holds it; SQLite's ``message_words`` also
    takes no row with a ``change_of``, and an edit's new words replace its old ones in one trigger, old out
    first (two triggers fire in no order SQLite promises, and FTS5 taking out the old words after the new
    went in would take out the words both hold).
    """
    message = build_schema(database).message
    _add_columns(
        database,
        [message.author, message.reply_to, message.edited, message.reactions, message.change_of, message.change_data],
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
        for statement in SQLITE_LOG_SEARCH_SCHEMA:
            execute(database, statement)


SQLITE_LOG_SEARCH_SCHEMA = (
    "DROP TRIGGER IF EXISTS message_words_added",
    "CREATE TRIGGER message_words_added AFTER INSERT ON messages"
    " WHEN NEW.search_words IS NOT NULL AND NEW.change_of IS NULL BEGIN"
    " INSERT INTO message_words (rowid, search_words) VALUES (NEW.id, NEW.search_words); END",
    "DROP TRIGGER IF EXISTS message_words_unset",
    "DROP TRIGGER IF EXISTS message_words_set",
    "CREATE TRIGGER IF NOT EXISTS message_words_changed AFTER UPDATE OF search_words ON messages BEGIN"
    " INSERT INTO message_words (message_words, rowid, search_words)"
    " SELECT 'delete', OLD.id, OLD.search_words WHERE OLD.search_words IS NOT NULL;"
    " INSERT INTO message_words (rowid, search_words) SELECT NEW.id, NEW.search_words"
    " WHERE NEW.search_words IS NOT NULL; END",
)


def _migrate_sqlite_index(database: peewee.Database) -> None:
    """SQLite: ``message_words`` made again as ``SQLITE_INDEX`` declares it, filled from the words the
    messages hold, and the index on ``change_of`` kept to the change rows.

    The table holds which messages hold each word and nothing else (``detail=none``: no positions, which
    only phrase and NEAR queries read, and rooms asks neither; ``columnsize=0``: no sizes, which only
    ranking reads), and reads ``_`` as a word character, as ``backends.search`` does: a message in ASCII is
    stored from now on with its own text as its words (``tokens.sqlite_search_words``). The messages stored
    before keep their tokens, which a search asks for as well. A message's insert then writes less to the
    index, and nothing to the index on ``change_of`` (partial, ``WHERE change_of IS NOT NULL``, which every
    query of it implies). The triggers name the table, not its definition, and stay.
    """
    if not counts_by_trigger(database):
        return
    execute(database, "DROP TABLE IF EXISTS message_words")
    execute(database, SQLITE_INDEX)
    execute(
        database,
        "INSERT INTO message_words (rowid, search_words) SELECT id, search_words FROM messages"
        " WHERE search_words IS NOT NULL AND change_of IS NULL",
    )
    execute(database, "DROP INDEX IF EXISTS messages_change_of")
    execute(database, "CREATE INDEX messages_change_of ON messages (change_of) WHERE change_of IS NOT NULL")


SQLITE_INDEX = (
    "CREATE VIRTUAL TABLE message_words USING fts5(search_words, content='messages', content_rowid='id',"
    " tokenize=\"ascii tokenchars '_'\", detail=none, columnsize=0)"
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
    7: _migrate_to_7,
    8: _migrate_message_log,
    9: _migrate_sqlite_index,
}

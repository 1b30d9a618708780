"""The SQL backend keeps what it acknowledged: across a restart, and in the schema it leaves behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3

import pytest

from backends.errors import BackendConfigError
from backends.sql.backend import SQLBackend
from backends.sql.database import RoomsDatabase, open_database
from backends.sql.history import HistoryReader
from backends.sql.migrations import SCHEMA_VERSION
from backends.sql.options import kind_of, read_options
from backends.sql.tables import build_schema
from rooms.config.loading import load_config
from tests.support.factories.sql import MariaDBFactory, SQLiteFactory, run_sql, sql_backend
from tests.support.messages import store, store_soon


async def started(url: str, **options) -> SQLBackend:
    backend = sql_backend(url, **options)
    await backend.start()
    return backend


@pytest.mark.gen_test(timeout=60)
async def test_history_dedup_and_counts_survive_a_restart(sql_factory):
    url = sql_factory.new_url()
    first = await started(url)
    try:
        stored = [(await store(first, "lobby", "ann", f"m{n}", f"c-{n}")).message for n in range(5)]
        await store(first, "other", "bob", "elsewhere", None)
    finally:
        await first.close()

    second = await started(url)
    try:
        assert (await second.history("lobby", 50)).messages == stored
        resent = await store(second, "lobby", "ann", "m0 again", "c-0")
        assert resent.duplicate and resent.message == stored[0]
        newer = (await store(second, "lobby", "ann", "after restart", None)).message
        assert second.id_key(newer.id) > second.id_key(stored[-1].id)
        assert (await second.replay("lobby", stored[-1].id, 10)).page.messages == [newer]
        busiest = await second.busiest_rooms(5)
        assert [(room.label, room.message_count) for room in busiest] == [("lobby", 6), ("other", 1)]
    finally:
        await second.close()


@pytest.mark.gen_test(timeout=60)
async def test_close_commits_every_store_queued_before_it(sql_factory):
    url = sql_factory.new_url()
    backend = await started(url)
    stores = [asyncio.ensure_future(store(backend, "lobby", "ann", f"m{n}", None)) for n in range(50)]
    await asyncio.sleep(0)  # each store is queued for the writer by its first step
    await backend.close()
    assert all(store.done() for store in stores)
    assert [store.result().message.message for store in stores] == [f"m{n}" for n in range(50)]
    reopened = await started(url)
    try:
        assert [m.message for m in (await reopened.history("lobby", 100)).messages] == [f"m{n}" for n in range(50)]
    finally:
        await reopened.close()


@pytest.mark.gen_test(timeout=60)
async def test_schema_is_created_on_an_empty_database_with_its_version_and_indexes(sql_factory):
    url = sql_factory.new_url()
    backend = await started(url)
    await backend.close()
    assert run_sql(url, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]
    database = open_database(url)
    try:
        indexes = {tuple(index.columns): index.unique for index in database.get_indexes("messages")}
        assert set(database.get_tables()) >= {"rooms", "messages", "schema_version"}
    finally:
        database.close()
    assert indexes[("room_id", "id")] is False
    assert indexes[("room_id", "client_id")] is True


@pytest.mark.gen_test(timeout=60)
async def test_a_database_of_a_newer_schema_version_is_refused(sql_factory):
    url = sql_factory.new_url()
    await (await started(url)).close()
    database = open_database(url)
    try:
        schema = build_schema(database)
        schema.version.update(version=SCHEMA_VERSION + 1).execute()
    finally:
        database.close()
    backend = sql_backend(url)
    try:
        with pytest.raises(BackendConfigError, match="schema version"):
            await backend.start()
    finally:
        await backend.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_version_1_database_is_migrated_in_place_and_keeps_its_history_and_counts(sql_factory):
    url = sql_factory.new_url()
    long_ago = "2026-01-01T00:00:00+00:00"
    database = open_database(url)
    try:
        schema = build_schema(database)
        database.create_tables(schema.models)
        schema.version.insert(version=1).execute()
        lobby = schema.room.create(label="lobby", created=long_ago, message_count=1, last_active=long_ago)
        schema.message.create(room=lobby, handle="ann", message="before", timestamp=long_ago)
    finally:
        database.close()
    backend = await started(url)
    try:
        stored = [await store(backend, "lobby", "bob", f"after {n}", None) for n in range(3)]
        assert [m.message for m in (await backend.history("lobby", 10)).messages] == [
            "before",
            "after 0",
            "after 1",
            "after 2",
        ]
        [summary] = await backend.busiest_rooms(10)
        assert (summary.label, summary.message_count) == ("lobby", 4)
        assert summary.last_active == stored[-1].message.timestamp
    finally:
        await backend.close()
    assert run_sql(url, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]


@pytest.mark.gen_test(timeout=60)
async def test_a_version_3_database_gains_moderation_in_place(sql_factory):
    url = sql_factory.new_url()
    await (await started(url)).close()
    database = open_database(url)
    try:  # back to what version 3 left: no tombstones, no moderation tables
        database.execute_sql("DROP TABLE bans")
        database.execute_sql("DROP TABLE locked_rooms")
        database.execute_sql("ALTER TABLE messages DROP COLUMN deleted")
        database.execute_sql("UPDATE schema_version SET version = 3")
        schema = build_schema(database)
        lobby = schema.room.create(label="lobby", created="2026-01-01T00:00:00+00:00", message_count=1)
        timestamp = f"{database.quote[0]}timestamp{database.quote[1]}"  # a keyword in some SQL
        database.execute_sql(
            f"INSERT INTO messages (room_id, handle, message, {timestamp}, client_id) VALUES"
            f" ({', '.join([database.param] * 5)})",
            [lobby.id, "ann", "from version 3", "2026-01-01T00:00:00+00:00", "c-old"],
        )
    finally:
        database.close()
    backend = await started(url)
    try:
        [old] = (await backend.history("lobby", 10)).messages
        newer = (await store(backend, "lobby", "bob", "after", None)).message
        assert await backend.delete_message("lobby", old.id)
        assert (await backend.history("lobby", 10)).messages == [newer]
        ban = await backend.add_ban("ann", None, None, None, "")
        await backend.set_locked("lobby", True)
        assert (await backend.bans(), await backend.locked_rooms()) == ([ban], {"lobby"})
    finally:
        await backend.close()
    assert run_sql(url, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]
    # The tombstone, the message after it, and the deletion's own row in the room's log.
    assert run_sql(url, "SELECT deleted FROM messages ORDER BY id") == [(1,), (0,), (2,)]


@pytest.mark.gen_test(timeout=60)
async def test_a_version_4_database_gains_who_sent_each_message_in_place(sql_factory):
    url = sql_factory.new_url()
    await (await started(url)).close()
    fresh_columns = message_columns(url)
    database = open_database(url)
    try:  # back to what version 4 left: messages without their senders
        database.execute_sql("ALTER TABLE messages DROP COLUMN user_id")
        database.execute_sql("ALTER TABLE messages DROP COLUMN moderator")
        database.execute_sql("UPDATE schema_version SET version = 4")
        schema = build_schema(database)
        lobby = schema.room.create(label="lobby", created="2026-01-01T00:00:00+00:00", message_count=1)
        insert_as_version_4(database, lobby.id, "from version 4", "c-old")
    finally:
        database.close()
    backend = await started(url)
    try:
        [old] = (await backend.history("lobby", 10)).messages
        assert (old.message, old.user, old.moderator) == ("from version 4", None, False)
        resent = await store(backend, "lobby", "ann", "from version 4", "c-old", "user-7", True)
        assert resent.duplicate and resent.message == old
        signed = (await store(backend, "lobby", "bob", "signed", "c-new", "user-7", True)).message
    finally:
        await backend.close()
    assert run_sql(url, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]
    assert message_columns(url) == fresh_columns  # migrated as a new table is made
    database = open_database(url)
    try:  # a writer that names no sender (as version 4 wrote) still stores: the columns have defaults
        insert_as_version_4(database, lobby.id, "written as before", None)
    finally:
        database.close()
    reopened = await started(url)
    try:
        messages = (await reopened.history("lobby", 10)).messages
        assert [(m.message, m.user, m.moderator) for m in messages] == [
            ("from version 4", None, False),
            ("signed", "user-7", True),
            ("written as before", None, False),
        ]
        assert messages[1] == signed and type(messages[1].moderator) is bool
    finally:
        await reopened.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_deleted_messages_tombstone_keeps_nothing_of_who_sent_it(sql_factory):
    url = sql_factory.new_url()
    backend = await started(url)
    try:
        signed = (await store(backend, "lobby", "Ann", "signed", "c-1", "user-7", True)).message
        assert await backend.delete_message("lobby", signed.id)
    finally:
        await backend.close()
    # Its row, besides the deletion's own row in the room's log (deleted 2).
    tombstone = run_sql(url, "SELECT handle, message, user_id, client_id, deleted FROM messages WHERE deleted < 2")
    assert tombstone == [("", "", None, "c-1", 1)]  # the client id stays: a resend is refused, not stored


def insert_as_version_4(database, room_id: int, text: str, client_id: str | None) -> None:
    timestamp = f"{database.quote[0]}timestamp{database.quote[1]}"  # a keyword in some SQL
    database.execute_sql(
        f"INSERT INTO messages (room_id, handle, message, {timestamp}, client_id) VALUES"
        f" ({', '.join([database.param] * 5)})",
        [room_id, "ann", text, "2026-01-01T00:00:00+00:00", client_id],
    )


def message_columns(url: str) -> list[tuple]:
    """The columns of ``messages`` (a migration appends them: in any order), each one's name and the type
    the driver reports."""
    database = open_database(url)
    try:
        cursor = database.execute_sql("SELECT * FROM messages WHERE 1 = 0")
        return sorted((str(column[0]).lower(), column[1]) for column in cursor.description)
    finally:
        database.close()


@pytest.mark.gen_test(timeout=60)
async def test_room_counts_stay_exact_when_many_stores_share_a_batch(sql_factory):
    backend = await started(sql_factory.new_url())
    try:
        rooms = ["alpha", "beta", "gamma"]
        await asyncio.gather(*(store(backend, rooms[n % 3], "ann", f"m{n}", None) for n in range(300)))
        busiest = await backend.busiest_rooms(10)
        assert sorted((r.label, r.message_count) for r in busiest) == [("alpha", 100), ("beta", 100), ("gamma", 100)]
    finally:
        await backend.close()


@pytest.mark.gen_test(timeout=60)
async def test_client_ids_differing_only_in_case_or_accent_are_different(sql_factory):
    backend = await started(sql_factory.new_url())
    try:
        results = [await store(backend, "lobby", "ann", text, text) for text in ("abc", "ABC", "über", "uber", "👋")]
        assert not any(result.duplicate for result in results)
        assert (await store(backend, "lobby", "ann", "again", "👋")).duplicate
        messages = (await backend.history("lobby", 10)).messages
        assert [m.client_id for m in messages] == ["abc", "ABC", "über", "uber", "👋"]
        assert messages[-1].message.encode() == "👋".encode()
    finally:
        await backend.close()


@pytest.mark.gen_test(timeout=60)
async def test_mysql_tables_are_utf8mb4_with_binary_collation():
    factory = MariaDBFactory()
    try:
        url = factory.new_url()
        await (await started(url)).close()
        rows = run_sql(
            url,
            "SELECT table_name, table_collation FROM information_schema.tables"
            " WHERE table_schema = DATABASE() ORDER BY table_name",
        )
        assert rows == [
            (table, "utf8mb4_bin")
            for table in ("audit_log", "bans", "locked_rooms", "messages", "rooms", "schema_version")
        ]
    finally:
        await factory.dispose()


@pytest.mark.gen_test(timeout=60)
async def test_sqlite_runs_in_wal_mode_with_the_configured_synchronous_level():
    factory = SQLiteFactory()
    try:
        url = factory.new_url()
        await (await started(url)).close()
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as plain:
            assert plain.execute("PRAGMA journal_mode").fetchone() == ("wal",)  # WAL stays with the file
        for level, expected in (("full", 2), ("normal", 1)):
            overrides = {"backend.url": url, "backend.sqlite_synchronous": level}
            options = read_options(load_config(os.devnull, environ={}, overrides=overrides).backend_options())
            database = open_database(options.url, options.synchronous)
            try:
                assert (database.synchronous, database.journal_mode) == (expected, "wal")
                assert database.execute_sql("PRAGMA busy_timeout").fetchone()[0] > 0
            finally:
                database.close()
    finally:
        await factory.dispose()


@pytest.mark.gen_test(timeout=60)
async def test_mysql_without_consecutive_auto_increment_inserts_row_by_row_in_order():
    # MySQL 8 defaults to innodb_autoinc_lock_mode=2, where a multi-row INSERT's ids may interleave with
    # another session's; the backend then inserts a batch row by row. This MariaDB uses mode 1, so the
    # test takes that path by hand (the server's mode is fixed when it starts).
    factory = MariaDBFactory()
    backend = await started(factory.new_url())
    try:
        backend._writer._consecutive_ids = False
        results = await asyncio.gather(*(store(backend, "lobby", "ann", f"m{n}", f"c{n}") for n in range(20)))
        history = (await backend.history("lobby", 50)).messages
        assert history == [result.message for result in results]
        assert [m.message for m in history] == [f"m{n}" for n in range(20)]
    finally:
        await backend.close()
        await factory.dispose()


def query_plan(database, kind: str, sql: str, params: list) -> list[str]:
    """What the database says it will do for ``sql``, a line per step."""
    if kind == "sqlite":
        return [row[-1] for row in database.execute_sql(f"EXPLAIN QUERY PLAN {sql}", params)]
    rows = database.execute_sql(f"EXPLAIN {sql}", params).fetchall()
    if kind == "postgresql":
        return [row[0] for row in rows]
    # MySQL/MariaDB: a row per table; "type" ALL is a full scan, range/ref/eq_ref/const use an index.
    return [f"{row[1]} {row[2]} type={row[3]} key={row[5]}" for row in rows]


@pytest.mark.gen_test(timeout=60)
async def test_history_reads_are_index_range_scans_not_table_scans(sql_factory):
    # A quiet room's messages on either side of a busy room's many: reading the quiet room along the
    # table's own order (by id alone) would step through nearly all of the busy room's.
    url = sql_factory.new_url()
    backend = await started(url)
    try:
        await asyncio.gather(*(store_soon(backend, "quiet", "ann", f"q{n}", None) for n in range(30)))
        await asyncio.gather(*(store_soon(backend, "busy", "bob", f"b{n}", None) for n in range(6000)))
        await asyncio.gather(*(store_soon(backend, "quiet", "ann", f"q{n}", None) for n in range(30, 60)))
    finally:
        await backend.close()
    kind = kind_of(url)
    database = open_database(url)
    try:
        database.execute_sql("ANALYZE TABLE messages, rooms" if kind == "mysql" else "ANALYZE")
        store = HistoryReader(RoomsDatabase(database, build_schema(database), kind))
        [(quiet_id,)] = database.execute_sql("SELECT id FROM rooms WHERE label = 'quiet'").fetchall()
        quiet_ids = [row[0] for row in database.execute_sql(f"SELECT id FROM messages WHERE room_id = {quiet_id}")]
        assert max(quiet_ids) - min(quiet_ids) > 6000  # the busy room's ids lie between
        for before_id, after_id in ((None, None), (max(quiet_ids) - 10, None), (None, min(quiet_ids) + 10)):
            sql, params = store.history_query(quiet_id, 51, before_id, after_id).sql()
            text = "\n".join(query_plan(database, kind, sql, params))
            if kind == "sqlite":
                assert "SCAN messages" not in text and "USING INDEX message_room_id_id" in text, text
            elif kind == "postgresql":
                assert "Seq Scan on messages" not in text and "message_room_id_id" in text, text
            else:
                assert "type=ALL" not in text and "key=message_room_id_id" in text, text
        page = store.history("quiet", 50, None, None)
        assert [m.message for m in page.messages] == [f"q{n}" for n in range(10, 60)] and page.has_more
    finally:
        database.close()

"""A database of schema version 6 (before search and the room's log) gains ``messages.search_words`` and its
engine's full-text index in place (version 7), then the room's log (version 8), with every message it held
searchable by its current text, on SQLite, PostgreSQL and MariaDB; and SQLite's FTS5 table, kept by
triggers, stays in step with the messages through edits, reactions, deletions, prunes and expiry."""

from __future__ import annotations

import pytest

from backends.base import NewMessage, utc_timestamp
from backends.search import SearchQuery
from backends.sql.migrations import SCHEMA_VERSION
from backends.sql.tokens import room_token, word_token
from tests.support.factories.sql import SQLiteFactory, run_sql, sql_backend
from tests.support.messages import store
from tests.support.waiting import eventually

# What each engine had at version 6: no search words, no index of them, and no room's log (version 8): no
# change rows, none of the log's columns or its index, and SQLite's count trigger counting every row.
LOG_COLUMNS = ("author", "reply_to", "edited", "reactions", "change_of", "change_data")
NO_LOG = ("DELETE FROM messages WHERE deleted = 2", *(f"ALTER TABLE messages DROP COLUMN {c}" for c in LOG_COLUMNS))
BACK_TO_VERSION_6 = {
    "sqlite": (
        "DROP TRIGGER message_words_added",
        "DROP TRIGGER message_words_removed",
        "DROP TRIGGER message_words_changed",  # version 8's; version 7 made message_words_unset and _set
        "DROP TABLE message_words",
        "ALTER TABLE messages DROP COLUMN search_words",
        "DROP TRIGGER messages_count_in_room",
        "CREATE TRIGGER messages_count_in_room AFTER INSERT ON messages BEGIN"
        ' UPDATE rooms SET message_count = message_count + 1, last_active = NEW."timestamp"'
        " WHERE id = NEW.room_id; END",
        "DROP INDEX messages_change_of",
        *NO_LOG,
    ),
    "postgresql": (
        "DROP INDEX messages_search_words",
        "ALTER TABLE messages DROP COLUMN search_words",
        "DROP INDEX messages_change_of",
        *NO_LOG,
    ),
    "mysql": (
        "ALTER TABLE messages DROP INDEX messages_search_words",
        "ALTER TABLE messages DROP COLUMN search_words",
        "DROP INDEX messages_change_of ON messages",
        *NO_LOG,
    ),
}
KEY = "key:" + "c" * 64
# Where each engine keeps the index, once migrated.
THE_INDEX = {
    "sqlite": "SELECT name FROM sqlite_master WHERE name = 'message_words'",
    # In the test's own schema: others hold an index of the same name.
    "postgresql": "SELECT indexname FROM pg_indexes WHERE indexname = 'messages_search_words'"
    " AND schemaname = current_schema()",
    "mysql": "SELECT index_name FROM information_schema.statistics WHERE table_schema = DATABASE()"
    " AND index_name = 'messages_search_words' AND index_type = 'FULLTEXT'",
}


@pytest.fixture
def engine(sql_factory, request):
    return request.node.callspec.params["sql_factory"], sql_factory


async def found(backend, room: str, q: str) -> list[str]:
    return [message.message for message in (await backend.search(room, SearchQuery.parse(q), 50)).messages]


@pytest.mark.gen_test(timeout=90)
async def test_a_version_6_database_gains_search_in_place_and_finds_what_it_held(engine):
    name, factory = engine
    url = factory.new_url()
    backend = sql_backend(url)
    await backend.start()
    try:
        kept = [(await store(backend, "lobby", "ann", f"Old message {n} of Straße")).message for n in range(5)]
        gone = (await store(backend, "lobby", "ann", "old message, deleted")).message
        assert await backend.delete_message("lobby", gone.id)
        elsewhere = (await store(backend, "other", "bob", "old message elsewhere")).message
    finally:
        await backend.close()
    run_sql(url, *BACK_TO_VERSION_6[name], "UPDATE schema_version SET version = 6")

    migrated = sql_backend(url)
    await migrated.start()
    try:
        assert (await migrated.history("lobby", 10)).messages == kept  # history as it was
        assert await found(migrated, "lobby", "old MESSAGE strasse") == [m.message for m in reversed(kept)]
        assert await found(migrated, "lobby", "deleted") == []
        assert await found(migrated, "other", "elsewh") == [elsewhere.message]
        newer = (await store(migrated, "lobby", "ann", "a new message")).message
        assert await found(migrated, "lobby", "message") == [newer.message, *(m.message for m in reversed(kept))]
        assert await migrated.delete_message("lobby", kept[0].id)
        assert await found(migrated, "lobby", "0") == []
        # The room's log came with version 8: an edit is found by its new words only.
        authored = NewMessage("lobby", "ann", "a message to change", None, utc_timestamp(), author=KEY)
        mine = (await migrated.store(authored)).message
        await migrated.edit_message("lobby", mine.id, "now reworded", utc_timestamp(), frozenset({KEY}))
        assert await found(migrated, "lobby", "change") == []
        assert await found(migrated, "lobby", "reworded") == ["now reworded"]
    finally:
        await migrated.close()
    assert run_sql(url, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)] == [(9,)]
    assert len(run_sql(url, THE_INDEX[name])) == 1
    if name == "sqlite":
        run_sql(url, "INSERT INTO message_words (message_words) VALUES ('integrity-check')")  # raises if out of step


@pytest.mark.gen_test(timeout=60)
async def test_starting_again_on_the_newest_version_changes_nothing(engine):
    _, factory = engine
    url = factory.new_url()
    for text in ("first start", "second start"):
        backend = sql_backend(url)
        await backend.start()
        try:
            await store(backend, "lobby", "ann", text)
            assert len(await found(backend, "lobby", "start")) == (1 if text == "first start" else 2)
        finally:
            await backend.close()
    assert run_sql(url, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]


@pytest.mark.gen_test(timeout=60)
async def test_the_sqlite_index_stays_in_step_through_deletions_prunes_and_expiry():
    factory = SQLiteFactory()
    url = factory.new_url()
    backend = sql_backend(url, retain_per_room=3)
    await backend.start()
    try:
        stored = [(await store(backend, "lobby", "ann", f"word {n}")).message for n in range(12)]
        for message in stored[-2:]:
            assert await backend.delete_message("lobby", message.id)  # tombstones, pruned with the rest later
        for n in range(12, 20):
            await store(backend, "lobby", "ann", f"word {n}")
        await eventually(lambda: run_sql(url, "SELECT COUNT(*) FROM messages WHERE deleted = 1") == [(0,)], timeout=10)
        run_sql(url, "INSERT INTO message_words (message_words) VALUES ('integrity-check')")  # raises if out of step
        assert await backend.expire_rooms("9999-12-31T00:00:00+00:00") == 1
        assert await found(backend, "lobby", "word") == []
        # The index holds no token of any message any more: the MATCH itself finds nothing.
        assert run_sql(url, f"SELECT COUNT(*) FROM message_words WHERE message_words MATCH '{word_token('word')}'") == [
            (0,)
        ]
        run_sql(url, "INSERT INTO message_words (message_words) VALUES ('integrity-check')")
    finally:
        await backend.close()
        await factory.dispose()


@pytest.mark.gen_test(timeout=60)
async def test_the_sqlite_index_holds_messages_as_they_now_stand_and_never_a_change():
    factory = SQLiteFactory()
    url = factory.new_url()
    backend = sql_backend(url)
    await backend.start()
    try:
        first, second, third = [
            (await backend.store(NewMessage("lobby", "ann", text, None, utc_timestamp(), author=KEY))).message
            for text in ("alpha one", "beta two", "gamma three")
        ]
        await backend.edit_message("lobby", first.id, "delta one", utc_timestamp(), frozenset({KEY}))
        assert await backend.react("lobby", second.id, "sub:bob", "👍", True) is not None
        assert await backend.delete_message("lobby", third.id, frozenset({KEY}))
        assert run_sql(url, "SELECT COUNT(*) FROM messages WHERE deleted = 2") == [(3,)]  # the edit, reaction, deletion
        ((room_id,),) = run_sql(url, "SELECT id FROM rooms WHERE label = 'lobby'")
        indexed = run_sql(url, f"SELECT rowid FROM message_words WHERE message_words MATCH '{room_token(room_id)}'")
        assert sorted(row[0] for row in indexed) == [int(first.id), int(second.id)]
        run_sql(url, "INSERT INTO message_words (message_words) VALUES ('integrity-check')")  # raises if out of step
        assert await found(backend, "lobby", "alpha") == []
        assert await found(backend, "lobby", "one") == ["delta one"]
        assert await found(backend, "lobby", "gamma") == []
    finally:
        await backend.close()
        await factory.dispose()

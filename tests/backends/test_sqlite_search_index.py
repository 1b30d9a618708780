"""SQLite's search index as version 9 has it (``migrations._migrate_sqlite_index``): a database version 8 wrote,
every message's words as tokens in the index of positions, is migrated in place and finds what it held exactly
as before, beside new messages stored with their own text; and a message whose text holds another room's
token never ends that room's search early."""

from __future__ import annotations

import pytest

from backends.base import NewMessage, utc_timestamp
from backends.search import SearchQuery
from backends.sql.migrations import SCHEMA_VERSION, SQLITE_SEARCH_SCHEMA
from backends.sql.tokens import room_token, search_words
from tests.support.factories.sql import SQLiteFactory, run_sql, sql_backend
from tests.support.messages import store

KEY = "key:" + "d" * 64
INTEGRITY_CHECK = "INSERT INTO message_words (message_words) VALUES ('integrity-check')"  # raises if out of step


@pytest.fixture
def factory(io_loop):
    made = SQLiteFactory()
    yield made
    io_loop.run_sync(made.dispose)


async def found(backend, room: str, q: str, limit: int = 50) -> list[str]:
    return [message.message for message in (await backend.search(room, SearchQuery.parse(q), limit)).messages]


def as_version_8_left_it(url: str) -> None:
    """Every message's words as tokens (the words of an ASCII text too), in version 7's FTS5 table (positions,
    sizes, ``_`` a separator), the index on ``change_of`` over every row."""
    rows = run_sql(url, "SELECT id, room_id, message FROM messages WHERE search_words IS NOT NULL")
    # Set while the index is the new one, whose trigger takes each message's words out as they were stored.
    rewritten = [
        f"UPDATE messages SET search_words = '{search_words(room_id, text)}' WHERE id = {message_id}"
        for message_id, room_id, text in rows
    ]
    run_sql(
        url,
        *rewritten,
        "DROP TABLE message_words",
        SQLITE_SEARCH_SCHEMA[0],
        "INSERT INTO message_words (rowid, search_words) SELECT id, search_words FROM messages"
        " WHERE search_words IS NOT NULL",
        "DROP INDEX messages_change_of",
        "CREATE INDEX messages_change_of ON messages (change_of)",
        "UPDATE schema_version SET version = 8",
    )


@pytest.mark.gen_test(timeout=60)
async def test_a_version_8_database_finds_what_it_held_as_before_beside_what_is_stored_after(factory):
    url = factory.new_url()
    backend = sql_backend(url)
    await backend.start()
    try:
        texts = ["Hello snake_case_name", "hello wörld", "Straße und Weg", "othello is a play"]
        held = [
            (await backend.store(NewMessage("lobby", "ann", text, None, utc_timestamp(), author=KEY))).message
            for text in texts
        ]
        gone = (await store(backend, "lobby", "ann", "hello, soon deleted")).message
        assert await backend.delete_message("lobby", gone.id)
        assert await backend.react("lobby", held[0].id, "sub:bob", "👍", True) is not None
        elsewhere = (await store(backend, "other", "bob", "hello elsewhere")).message
    finally:
        await backend.close()
    as_version_8_left_it(url)
    assert "detail=none" not in run_sql(url, "SELECT sql FROM sqlite_master WHERE name = 'message_words'")[0][0]

    migrated = sql_backend(url)
    await migrated.start()
    try:
        assert [message.message for message in (await migrated.history("lobby", 10)).messages] == texts
        assert await found(migrated, "lobby", "hello") == [texts[1], texts[0]]
        assert await found(migrated, "lobby", "hello ") == [texts[1], texts[0]]
        assert await found(migrated, "lobby", "snake_c") == [texts[0]]
        assert await found(migrated, "lobby", "snake ") == []
        assert await found(migrated, "lobby", "strasse w") == [texts[2]]
        assert await found(migrated, "lobby", "WÖRLD") == [texts[1]]
        assert await found(migrated, "lobby", "deleted") == []
        assert await found(migrated, "other", "hel") == [elsewhere.message]
        newer = (await store(migrated, "lobby", "ann", "HELLO again, snake_case_name")).message
        assert await found(migrated, "lobby", "hello snake_case_name") == [newer.message, texts[0]]
        assert await found(migrated, "lobby", "hello h") == [newer.message, texts[1], texts[0]]
        # An old message edited takes its tokens out and its text's words in; one deleted goes.
        await migrated.edit_message("lobby", held[3].id, "hamlet is a play", utc_timestamp(), frozenset({KEY}))
        assert await found(migrated, "lobby", "othello") == []
        assert await found(migrated, "lobby", "play ham") == ["hamlet is a play"]
        assert await migrated.delete_message("lobby", held[1].id)
        assert await found(migrated, "lobby", "hello") == [newer.message, texts[0]]
        run_sql(url, INTEGRITY_CHECK)
    finally:
        await migrated.close()
    assert run_sql(url, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)] == [(9,)]
    ((index,),) = run_sql(url, "SELECT sql FROM sqlite_master WHERE name = 'message_words'")
    assert "detail=none" in index and "columnsize=0" in index
    ((change_of,),) = run_sql(url, "SELECT sql FROM sqlite_master WHERE name = 'messages_change_of'")
    assert change_of.endswith("WHERE change_of IS NOT NULL")
    ((room_id,),) = run_sql(url, "SELECT id FROM rooms WHERE label = 'lobby'")
    assert run_sql(url, f"SELECT search_words FROM messages WHERE id = {newer.id}") == [
        (f" {room_token(room_id)} HELLO again, snake_case_name ",)
    ]


@pytest.mark.gen_test(timeout=60)
async def test_messages_naming_another_room_s_token_never_end_its_search_early(factory):
    url = factory.new_url()
    backend = sql_backend(url)
    await backend.start()
    try:
        first = (await store(backend, "lobby", "ann", "hello from the lobby")).message
        ((room_id,),) = run_sql(url, "SELECT id FROM rooms WHERE label = 'lobby'")
        # Newer messages of another room, each holding the lobby's token as a word: hits of the index that
        # the lobby's search reads past, several batches of them.
        for n in range(25):
            await store(backend, "other", "bob", f"hello {room_token(room_id)} {n}")
        assert await found(backend, "lobby", "hello", limit=3) == [first.message]
        assert await found(backend, "lobby", "hel", limit=1) == [first.message]
        assert await found(backend, "other", "hello", limit=100) == [
            f"hello {room_token(room_id)} {n}" for n in reversed(range(25))
        ]
    finally:
        await backend.close()

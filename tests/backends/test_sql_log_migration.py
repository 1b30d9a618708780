"""A database of schema version 7 (search; before the room's log: edits, deletions by their author, replies,
reactions) gains it in place (version 8), keeping what it held, on SQLite, PostgreSQL and MariaDB: its messages read as
before, can be replied to and deleted by a moderator (they have no author, so nobody else changes them), and
new messages take every change; searches find messages by their current text. The earlier version is made
from a database this release wrote, with what the migration adds taken away again, as the earlier release
left it."""

from __future__ import annotations

import pytest

from backends.base import NewMessage, utc_timestamp
from backends.changes import ChangeKind
from backends.errors import NotAuthor
from backends.search import SearchQuery
from backends.sql.migrations import SCHEMA_VERSION, SQLITE_SEARCH_SCHEMA
from tests.support.factories.sql import run_sql, sql_backend
from tests.support.messages import store

LOG_COLUMNS = ("author", "reply_to", "edited", "reactions", "change_of", "change_data")
KEY = "key:" + "b" * 64
BEFORE_THE_LOG = 7  # search's version
# What the earlier version's SQLite trigger was: it counted every row inserted.
EARLIER_TRIGGER = (
    "CREATE TRIGGER messages_count_in_room AFTER INSERT ON messages BEGIN"
    ' UPDATE rooms SET message_count = message_count + 1, last_active = NEW."timestamp"'
    " WHERE id = NEW.room_id; END"
)


def as_the_earlier_release_left_it(url: str) -> None:
    sqlite = url.startswith("sqlite")
    drop_index = "DROP INDEX messages_change_of" + ("" if sqlite or url.startswith("postgresql") else " ON messages")
    statements = ["DROP TRIGGER messages_count_in_room", EARLIER_TRIGGER] if sqlite else []
    if sqlite:  # version 7's triggers of the search index, which knew no change rows
        statements += ["DROP TRIGGER message_words_added", "DROP TRIGGER message_words_changed", *SQLITE_SEARCH_SCHEMA]
    statements += [drop_index, *(f"ALTER TABLE messages DROP COLUMN {column}" for column in LOG_COLUMNS)]
    run_sql(url, *statements, f"UPDATE schema_version SET version = {BEFORE_THE_LOG}")


@pytest.mark.gen_test(timeout=60)
async def test_a_database_of_the_version_before_gains_the_room_s_log_in_place(sql_factory):
    url = sql_factory.new_url()
    backend = sql_backend(url)
    await backend.start()
    try:
        old = (await store(backend, "lobby", "ann", "from before", "c-1")).message
        doomed = (await store(backend, "lobby", "ann", "to be deleted")).message
    finally:
        await backend.close()
    as_the_earlier_release_left_it(url)

    migrated = sql_backend(url)
    await migrated.start()
    try:
        assert (await migrated.history("lobby", 10)).messages == [old, doomed]
        with pytest.raises(NotAuthor):
            await migrated.edit_message("lobby", old.id, "changed", utc_timestamp(), frozenset({KEY}))
        reply = NewMessage("lobby", "bob", "a reply", None, utc_timestamp(), reply_to=old.id, author=KEY)
        answer = (await migrated.store(reply)).message
        assert answer.reply_to == old.id and answer.author == KEY
        edit = await migrated.edit_message("lobby", answer.id, "a better reply", utc_timestamp(), frozenset({KEY}))
        reaction = await migrated.react("lobby", old.id, "sub:carol", "👍", True)
        assert reaction is not None and reaction.reactions == (("👍", 1),)
        assert await migrated.delete_message("lobby", doomed.id)
        now = (await migrated.history("lobby", 10)).messages
        assert [(m.id, m.message, m.reactions) for m in now] == [
            (old.id, "from before", (("👍", 1),)),
            (answer.id, "a better reply", ()),
        ]
        replay = await migrated.replay("lobby", old.id, 10, origin=old.id)
        assert [change.kind for change in replay.changes] == [ChangeKind.REACTIONS]
        assert [m.id for m in replay.page.messages] == [answer.id] and int(edit.at) > int(answer.id)
        searched = await migrated.search("lobby", SearchQuery.parse("reply"), 10)
        assert [m.message for m in searched.messages] == ["a better reply"]
        assert (await migrated.search("lobby", SearchQuery.parse("deleted"), 10)).messages == []
        # Changes are not messages: the room counts its two, however many changes it took.
        assert [room.message_count for room in await migrated.busiest_rooms(5)] == [2]
    finally:
        await migrated.close()
    assert run_sql(url, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]

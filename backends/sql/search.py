"""The SQL backend's searches: each engine's full-text index of the messages' tokens (``tokens.py``) asked
for the candidates, which the one matcher (``backends/search.py``) then checks, reading each message as it
now stands. Run on the reader threads.

* SQLite: an FTS5 table, ``message_words``, with ``messages`` as its external content, kept in step by
  triggers on insert, update and delete (so edits, prunes, expiry and deletions too), read newest first a
  batch at a time. A message in ASCII holds its own words there, any other its words' tokens
  (``tokens.sqlite_search_words``), so an ASCII word is asked for in either form. A message's text may
  hold a word that is another room's token: the index's hits are counted before the room's messages are
  kept, so that such a message never ends a search early.
* PostgreSQL: a GIN index on ``to_tsvector('simple', search_words)``, asked with ``to_tsquery``
  (``w...:*`` for the prefix).
* MariaDB/MySQL: an InnoDB FULLTEXT index, asked in BOOLEAN MODE (``+w... +w...*``). A server whose
  ``innodb_ft_min_token_size`` or ``innodb_ft_max_token_size`` would leave tokens out is asked with
  ``LIKE`` on the tokens instead: slower, as exact.

Only messages are candidates (``deleted`` 0): never a tombstone, nor a change's row.
"""

from __future__ import annotations

import logging
from typing import Any

from backends.messages import StoredMessage
from backends.search import SearchPage, SearchQuery
from backends.sql.changes import MESSAGE_COLUMNS, stored_message
from backends.sql.database import RoomsDatabase, execute
from backends.sql.tokens import MAX_TOKEN_CHARS, MIN_TOKEN_CHARS, room_token, word_token

log = logging.getLogger(__name__)


class SearchReader:
    def __init__(self, database: RoomsDatabase, fulltext: bool | None = None) -> None:
        self.db = database.db
        self.kind = database.kind
        self._room = database.tables.room
        self._timestamp = database.timestamp
        # MySQL: whether the server's token sizes let its FULLTEXT index hold every token (None: ask at start).
        self._fulltext = fulltext

    def prepare(self) -> None:
        """Learn what the server's FULLTEXT index holds, once it can be asked (at start)."""
        if self.kind != "mysql" or self._fulltext is not None:
            return
        row = execute(self.db, "SELECT @@innodb_ft_min_token_size, @@innodb_ft_max_token_size").fetchone()
        assert row is not None
        self._fulltext = int(row[0]) <= MIN_TOKEN_CHARS and int(row[1]) >= MAX_TOKEN_CHARS
        if not self._fulltext:
            log.warning(
                "innodb_ft_min_token_size %s or innodb_ft_max_token_size %s leaves words out of the FULLTEXT"
                " index; searches read the room's messages with LIKE instead",
                row[0],
                row[1],
            )

    def search(self, label: str, query: SearchQuery, limit: int, before_id: int | None) -> SearchPage:
        room = self._room
        room_id = room.select(room.id).where(room.label == label).scalar()
        found: list[StoredMessage] = []
        if room_id is None or query.is_empty:
            return SearchPage(found, False)
        batch = limit + 1
        while True:
            rows, older = self._candidates(room_id, query, before_id, batch)
            for row in rows:
                if query.matches(row[2]):  # the text, as it now stands
                    if len(found) == limit:
                        return SearchPage(found, True)
                    found.append(stored_message(label, row))
            if older is None:
                return SearchPage(found, False)
            before_id = older

    def _candidates(
        self, room_id: int, query: SearchQuery, before_id: int | None, batch: int
    ) -> tuple[list[tuple[Any, ...]], int | None]:
        """The room's messages, newest first, among the next ``batch`` the index finds holding the query's
        tokens (and the room's), and the id to read on before (None: the index holds none older)."""
        param = self.db.param
        older = [] if before_id is None else [before_id]
        columns = ", ".join(f"m.{column}" for column in MESSAGE_COLUMNS.format(ts=self._timestamp).split(", "))
        in_room = f"m.room_id = {param} AND m.deleted = 0"
        if self.kind == "sqlite":
            # FTS5 walks its index newest first and stops at the batch; the messages are then read by
            # their ids, and a hit of another room (its text held this room's token) reads as NULLs.
            hits = (
                f"SELECT rowid AS hit FROM message_words WHERE message_words MATCH {param}"
                + ("" if before_id is None else f" AND rowid < {param}")
                + f" ORDER BY rowid DESC LIMIT {param}"
            )
            sql = (
                f"SELECT hits.hit, {columns} FROM ({hits}) hits LEFT JOIN messages m ON m.id = hits.hit"
                f" AND {in_room} ORDER BY hits.hit DESC"
            )
            found = list(execute(self.db, sql, [_sqlite_match(room_id, query), *older, batch, room_id]))
            rows = [tuple(row[1:]) for row in found if row[1] is not None]
            return rows, int(found[-1][0]) if len(found) == batch else None
        whole = [room_token(room_id), *(word_token(word) for word in query.whole_words)]
        prefix = None if query.prefix is None else word_token(query.prefix)
        condition, params = self._condition(whole, prefix)
        sql = (
            f"SELECT {columns} FROM messages m WHERE {condition} AND {in_room}"
            + ("" if before_id is None else f" AND m.id < {param}")
            + f" ORDER BY m.id DESC LIMIT {param}"
        )
        rows = [tuple(row) for row in execute(self.db, sql, [*params, room_id, *older, batch])]
        return rows, int(rows[-1][0]) if len(rows) == batch else None

    def _condition(self, whole: list[str], prefix: str | None) -> tuple[str, list[Any]]:
        """The server's condition on a message row (``m``) for its tokens to hold ``whole`` and a token
        that starts with ``prefix``, and its parameters."""
        param = self.db.param
        if self.kind == "postgresql":
            terms = " & ".join([*whole, *([f"{prefix}:*"] if prefix else [])])
            return f"to_tsvector('simple', m.search_words) @@ to_tsquery('simple', {param})", [terms]
        if self._fulltext:
            terms = " ".join([*(f"+{token}" for token in whole), *([f"+{prefix}*"] if prefix else [])])
            return f"MATCH (m.search_words) AGAINST ({param} IN BOOLEAN MODE)", [terms]
        # The room is the query's own condition: its token need not be looked for.
        patterns = [f"% {token} %" for token in whole[1:]] + ([f"% {prefix}%"] if prefix else [])
        return " AND ".join([f"m.search_words LIKE {param}"] * len(patterns)), patterns


def _sqlite_match(room_id: int, query: SearchQuery) -> str:
    """The FTS5 query for a room's messages that hold the query's words: each ASCII word as itself or as
    its token, any other as its token (``tokens.sqlite_search_words``), all quoted."""

    def either(word: str, prefix: str = "") -> str:
        token = f'"{word_token(word)}"{prefix}'
        return f'("{word}"{prefix} OR {token})' if word.isascii() else token

    terms = [f'"{room_token(room_id)}"', *(either(word) for word in query.whole_words)]
    if query.prefix is not None:
        terms.append(either(query.prefix, "*"))
    return " AND ".join(terms)

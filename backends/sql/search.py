"""The SQL backend's searches: each engine's full-text index of the messages' tokens (``tokens.py``) asked
for the candidates, which the one matcher (``backends/search.py``) then checks, reading each message as it
now stands. Run on the reader threads.

* SQLite: an FTS5 table, ``message_words``, with ``messages`` as its external content, kept in step by
  triggers on insert, update and delete (so edits, prunes, expiry and deletions too), read newest first a
  batch at a time.
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
            rows = self._candidates(room_id, query, before_id, batch)
            for row in rows:
                if query.matches(row[2]):  # the text, as it now stands
                    if len(found) == limit:
                        return SearchPage(found, True)
                    found.append(stored_message(label, row))
            if len(rows) < batch:
                return SearchPage(found, False)
            before_id = int(rows[-1][0])

    def _candidates(self, room_id: int, query: SearchQuery, before_id: int | None, batch: int) -> list[tuple[Any, ...]]:
        """Up to ``batch`` of the room's messages, newest first, whose tokens hold the room's and the query's."""
        param = self.db.param
        whole = [room_token(room_id), *(word_token(word) for word in query.whole_words)]
        prefix = None if query.prefix is None else word_token(query.prefix)
        older = [] if before_id is None else [before_id]
        columns = ", ".join(f"m.{column}" for column in MESSAGE_COLUMNS.format(ts=self._timestamp).split(", "))
        in_room = f"m.room_id = {param} AND m.deleted = 0"
        if self.kind == "sqlite":
            # FTS5 walks its index newest first and stops at the batch (the room's token keeps it to the
            # room); the messages are then read by their ids.
            terms = " ".join([*whole, *([f"{prefix}*"] if prefix else [])])
            hits = (
                f"SELECT rowid AS hit FROM message_words WHERE message_words MATCH {param}"
                + ("" if before_id is None else f" AND rowid < {param}")
                + f" ORDER BY rowid DESC LIMIT {param}"
            )
            sql = (
                f"SELECT {columns} FROM ({hits}) hits JOIN messages m ON m.id = hits.hit WHERE {in_room}"
                " ORDER BY m.id DESC"
            )
            params: list[Any] = [terms, *older, batch, room_id]
        else:
            condition, params = self._condition(whole, prefix)
            sql = (
                f"SELECT {columns} FROM messages m WHERE {condition} AND {in_room}"
                + ("" if before_id is None else f" AND m.id < {param}")
                + f" ORDER BY m.id DESC LIMIT {param}"
            )
            params += [room_id, *older, batch]
        return [tuple(row) for row in execute(self.db, sql, params)]

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

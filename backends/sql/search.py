"""The SQL backend's searches: each message's words as index tokens, and each engine's full-text index
asked for the candidates, which the one matcher (``backends/search.py``) then checks.

The engines tokenize, fold case and drop words each in their own way (PostgreSQL's parser reads an e-mail
address as one token, MariaDB compares by collation and skips stopwords and words under 3 or over 84
characters, SQLite folds case by Unicode 6.1). So none of them reads the message itself: the writer puts
its words, as ``backends.search.words_of`` finds them, in ``messages.search_words``, each written as a
**token** of ASCII letters only: ``w`` then each byte of the word's UTF-8 in two letters ``a``-``p``,
cut after ``MAX_TOKEN_BYTES`` bytes. Every engine reads such a token as one word, unchanged, never a
stopword, between 3 and 84 characters; and a word starts with a prefix exactly when its token starts with
the prefix's token. So the index finds every message that matches, and only the rare one whose long word
was cut also holds a near miss, which the matcher drops. Each message also holds its room's token
(``room<id>``), so that the index itself keeps to the room searched. Run on the reader threads.

* SQLite: an FTS5 table, ``message_words``, with ``messages`` as its external content, kept in step by
  triggers on insert, update and delete (so prunes, expiry and moderators' deletions too), read newest
  first a batch at a time.
* PostgreSQL: a GIN index on ``to_tsvector('simple', search_words)``, asked with ``to_tsquery``
  (``w...:*`` for the prefix).
* MariaDB/MySQL: an InnoDB FULLTEXT index, asked in BOOLEAN MODE (``+w... +w...*``). A server whose
  ``innodb_ft_min_token_size`` or ``innodb_ft_max_token_size`` would leave tokens out is asked with
  ``LIKE`` on the tokens instead: slower, as exact.
"""

from __future__ import annotations

import logging
from typing import Any

from backends.records import StoredMessage
from backends.search import SearchPage, SearchQuery, words_of
from backends.sql.database import RoomsDatabase, execute

log = logging.getLogger(__name__)

TOKEN_MARK = "w"
ROOM_MARK = "room"  # then the room's id: never a word's token, which starts with the word mark
MAX_TOKEN_BYTES = 41  # the mark and two letters a byte: 83 characters, within InnoDB's 84
MIN_TOKEN_CHARS = 3  # the shortest word token: the mark and one byte
MAX_TOKEN_CHARS = len(TOKEN_MARK) + 2 * MAX_TOKEN_BYTES
_HEX_TO_LETTERS = str.maketrans("0123456789abcdef", "abcdefghijklmnop")


def word_token(word: str) -> str:
    """A word (case-folded) as the index holds it."""
    return TOKEN_MARK + word.encode("utf-8")[:MAX_TOKEN_BYTES].hex().translate(_HEX_TO_LETTERS)


def room_token(room_id: int) -> str:
    """The token every message of a room holds beside its words: the index finds one room's messages only."""
    return f"{ROOM_MARK}{room_id}"


def search_words(room_id: int, text: str) -> str:
    """``messages.search_words`` of a message: its room's token and its words' tokens, each once, between
    spaces (and a space at each end, so that ``LIKE '% token %'`` finds the first and the last)."""
    tokens = " ".join(map(word_token, dict.fromkeys(words_of(text))))
    return f" {room_token(room_id)} {tokens} "


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
            for message_id, handle, text, stamp, client_id, user, moderator in rows:
                if query.matches(text):
                    if len(found) == limit:
                        return SearchPage(found, True)
                    found.append(
                        StoredMessage(str(message_id), label, handle, text, stamp, client_id, user, bool(moderator))
                    )
            if len(rows) < batch:
                return SearchPage(found, False)
            before_id = int(rows[-1][0])

    def _candidates(self, room_id: int, query: SearchQuery, before_id: int | None, batch: int) -> list[tuple[Any, ...]]:
        """Up to ``batch`` of the room's messages, newest first, whose tokens hold the room's and the query's."""
        param = self.db.param
        whole = [room_token(room_id), *(word_token(word) for word in query.whole_words)]
        prefix = None if query.prefix is None else word_token(query.prefix)
        older = [] if before_id is None else [before_id]
        columns = f"m.id, m.handle, m.message, m.{self._timestamp}, m.client_id, m.user_id, m.moderator"
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

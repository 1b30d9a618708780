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
was cut also holds a near miss, which the matcher drops. Run on the reader threads.

* SQLite: an FTS5 table, ``message_words``, with ``messages`` as its external content, kept in step by
  triggers on insert, update and delete (so prunes, expiry and moderators' deletions too).
* PostgreSQL: a GIN index on ``to_tsvector('simple', search_words)``, asked with ``to_tsquery``
  (``w...:*`` for the prefix).
* MariaDB/MySQL: an InnoDB FULLTEXT index, asked in BOOLEAN MODE (``+w... +w...*``). A server whose
  ``innodb_ft_min_token_size`` or ``innodb_ft_max_token_size`` would leave tokens out is asked with
  ``LIKE`` on the tokens instead: slower, as exact.
"""

from __future__ import annotations

import logging

from backends.records import StoredMessage
from backends.search import SearchPage, SearchQuery, words_of
from backends.sql.database import RoomsDatabase, execute

log = logging.getLogger(__name__)

TOKEN_MARK = "w"
MAX_TOKEN_BYTES = 41  # the mark and two letters a byte: 83 characters, within InnoDB's 84
MIN_TOKEN_CHARS = 3  # the shortest token: the mark and one byte
_LETTERS = "abcdefghijklmnop"


def word_token(word: str) -> str:
    """A word (case-folded) as the index holds it."""
    data = word.encode("utf-8")[:MAX_TOKEN_BYTES]
    return TOKEN_MARK + "".join(_LETTERS[byte >> 4] + _LETTERS[byte & 15] for byte in data)


def search_words(text: str) -> str:
    """``messages.search_words`` of a message: its words' tokens, each once, between spaces (and a space
    at each end, so that ``LIKE '% token %'`` finds the first and the last)."""
    tokens = dict.fromkeys(word_token(word) for word in words_of(text))
    return f" {' '.join(tokens)} " if tokens else ""


class SearchReader:
    def __init__(self, database: RoomsDatabase) -> None:
        self.db = database.db
        self.kind = database.kind
        self._room = database.tables.room
        self._timestamp = database.timestamp
        self._fulltext = True  # MySQL: whether the server's token sizes let the FULLTEXT index hold every token

    def prepare(self) -> None:
        """Learn what the server's FULLTEXT index holds, once it can be asked (at start)."""
        if self.kind != "mysql":
            return
        row = execute(self.db, "SELECT @@innodb_ft_min_token_size, @@innodb_ft_max_token_size").fetchone()
        assert row is not None
        self._fulltext = int(row[0]) <= MIN_TOKEN_CHARS and int(row[1]) >= len(word_token("x" * MAX_TOKEN_BYTES))
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
        condition, terms = self._condition(query)
        batch = limit + 1
        while True:
            rows = self._candidates(room_id, condition, terms, before_id, batch)
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

    def _condition(self, query: SearchQuery) -> tuple[str, list[str]]:
        """The engine's condition on a message row (``m``) for its tokens to hold the query's, and its
        parameters."""
        whole = [word_token(word) for word in query.whole_words]
        prefix = None if query.prefix is None else word_token(query.prefix)
        param = self.db.param
        if self.kind == "sqlite":
            terms = " ".join([*whole, *([f"{prefix}*"] if prefix else [])])
            return f"m.id IN (SELECT rowid FROM message_words WHERE message_words MATCH {param})", [terms]
        if self.kind == "postgresql":
            terms = " & ".join([*whole, *([f"{prefix}:*"] if prefix else [])])
            return f"to_tsvector('simple', m.search_words) @@ to_tsquery('simple', {param})", [terms]
        if self._fulltext:
            terms = " ".join([*(f"+{token}" for token in whole), *([f"+{prefix}*"] if prefix else [])])
            return f"MATCH (m.search_words) AGAINST ({param} IN BOOLEAN MODE)", [terms]
        patterns = [f"% {token} %" for token in whole] + ([f"% {prefix}%"] if prefix else [])
        return " AND ".join([f"m.search_words LIKE {param}"] * len(patterns)), patterns

    def _candidates(
        self, room_id: int, condition: str, terms: list[str], before_id: int | None, batch: int
    ) -> list[tuple[int, str, str, str, str | None, str | None, bool]]:
        param = self.db.param
        older = "" if before_id is None else f" AND m.id < {param}"
        sql = (
            f"SELECT m.id, m.handle, m.message, m.{self._timestamp}, m.client_id, m.user_id, m.moderator"
            f" FROM messages m WHERE {condition} AND m.room_id = {param} AND m.deleted = 0{older}"
            f" ORDER BY m.id DESC LIMIT {param}"
        )
        params: list[object] = [*terms, room_id, *([] if before_id is None else [before_id]), batch]
        return [tuple(row) for row in execute(self.db, sql, params)]

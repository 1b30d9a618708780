"""What a word is and how a query matches (``backends/search.py``), and the SQL index's tokens
(``backends/sql/tokens.py``): a word starts with a prefix exactly when its token starts with the prefix's, and
every token is one word, of the sizes every engine indexes, to every engine; SQLite's index (an in-memory
database) reads an ASCII text's own words exactly as ``words_of`` finds them."""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing

from hypothesis import given
from hypothesis import strategies as st

from backends.search import SearchQuery, words_of
from backends.sql.migrations import SQLITE_INDEX
from backends.sql.tokens import (
    MAX_TOKEN_BYTES,
    MAX_TOKEN_CHARS,
    MIN_TOKEN_CHARS,
    room_token,
    search_words,
    sqlite_search_words,
    word_token,
)

words = st.text(st.characters(categories=("L", "N", "Pc")), min_size=1, max_size=60).map(lambda w: w.casefold())
texts = st.text(max_size=200)


@given(words, words)
def test_a_word_starts_with_a_prefix_exactly_when_its_token_starts_with_the_prefix_token(word, prefix):
    starts = word.startswith(prefix)
    tokens_start = word_token(word).startswith(word_token(prefix))
    if len(prefix.encode()) < MAX_TOKEN_BYTES:
        assert starts == tokens_start
    else:
        assert tokens_start or not starts  # a long token is cut: never a miss, at worst a near miss to check


@given(words, words)
def test_different_words_of_a_length_the_index_holds_have_different_tokens(first, second):
    if first != second and max(len(first.encode()), len(second.encode())) <= MAX_TOKEN_BYTES:
        assert word_token(first) != word_token(second)


@given(texts, st.integers(min_value=1, max_value=2**63 - 1))
def test_every_token_is_a_plain_ascii_word_of_an_indexable_size(text, room_id):
    tokens = search_words(room_id, text).split()
    assert tokens[0] == f"room{room_id}"
    for token in tokens[1:]:
        assert re.fullmatch(r"w[a-p]+", token) and MIN_TOKEN_CHARS <= len(token) <= MAX_TOKEN_CHARS


@given(texts)
def test_a_text_matches_a_query_of_its_own_words(text):
    found = words_of(text)
    query = SearchQuery.parse(" ".join(found))
    assert query.matches(text) == bool(found)


def test_the_last_word_is_a_prefix_unless_the_query_ends_past_it():
    assert SearchQuery.parse("Hello WOR") == SearchQuery(("hello",), "wor")
    assert SearchQuery.parse("hello wor ") == SearchQuery(("hello", "wor"), None)
    assert SearchQuery.parse("wor, hello wor") == SearchQuery(("wor", "hello"), "wor")
    assert SearchQuery.parse(" ?! ").is_empty and not SearchQuery.parse("?!").matches("?!")


def test_folding_keeps_a_word_whole():
    assert words_of("İstanbul'da ÇAĞ") == ["i̇stanbul", "da", "çağ"]
    assert words_of("Straße e\u0301te\u0301") == ["strasse", "été"]  # NFC: é as one character
    assert SearchQuery.parse("ISTANBUL").matches("istanbul") and not SearchQuery.parse("stanbul").matches("İstanbul")


@given(texts, st.data())
def test_matching_is_the_definition_whatever_shortcut_it_takes(text, data):
    # Queries cut from the text itself (so that many match), and any others.
    query_text = data.draw(st.one_of(st.just(text[: len(text) // 2]), st.just(text[len(text) // 3 :]), texts))
    query = SearchQuery.parse(query_text)
    held = set(words_of(text))
    expected = (
        not query.is_empty
        and all(word in held for word in query.whole_words)
        and (query.prefix is None or any(word.startswith(query.prefix) for word in held))
    )
    assert query.matches(text) == expected


@given(texts)
def test_a_message_s_tokens_are_its_words_tokens_in_order_each_word_once(text):
    # ``search_words`` writes every token at once; each must be the word's own ``word_token``.
    assert search_words(5, text).split()[1:] == [word_token(word) for word in dict.fromkeys(words_of(text))]


@given(st.text(st.characters(max_codepoint=127), max_size=200) | texts)
def test_sqlite_s_index_reads_an_ascii_text_s_own_words_as_words_of_finds_them(text):
    with closing(sqlite3.connect(":memory:")) as database:
        database.execute("CREATE TABLE messages (id INTEGER PRIMARY KEY, search_words TEXT)")
        database.execute(SQLITE_INDEX)
        database.execute("CREATE VIRTUAL TABLE terms USING fts5vocab(message_words, 'row')")
        words = sqlite_search_words(7, text)
        database.execute("INSERT INTO message_words (rowid, search_words) VALUES (1, ?)", [words])
        terms = {term for (term,) in database.execute("SELECT term FROM terms")}
    if text.isascii():
        assert terms == {room_token(7), *words_of(text)}
    else:
        assert words == search_words(7, text) and terms == set(words.split())

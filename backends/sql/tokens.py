"""Each message's words as the SQL full-text indexes read them: ``messages.search_words``.

The engines tokenize, fold case and drop words each in their own way (PostgreSQL's parser reads an e-mail
address as one token, MariaDB compares by collation and skips stopwords and words under 3 or over 84
characters, SQLite folds case by Unicode 6.1). So none of them reads the message itself: the writer puts
its words, as ``backends.search.words_of`` finds them, in ``messages.search_words`` (again for an edit's
new text), each written as a **token** of ASCII letters only: ``w`` then each byte of the word's UTF-8 in
two letters ``a``-``p``, cut after ``MAX_TOKEN_BYTES`` bytes. Every engine reads such a token as one word,
unchanged, never a stopword, between 3 and 84 characters; and a word starts with a prefix exactly when its
token starts with the prefix's token. So the index finds every message that matches, and only the rare one
whose long word was cut also holds a near miss, which the matcher drops. Each message also holds its
room's token (``room<id>``), so that the index itself keeps to the room searched. A tombstone and a
change's row hold none.

On SQLite a message in ASCII holds its own text instead, beside its room's token (``sqlite_search_words``):
its FTS5 index reads ASCII words with the ``ascii`` tokenizer and ``_`` as a word character, which finds
exactly the words ``words_of`` does, folded alike, and spares the writer the tokens of nearly every
message. A message with any other character holds tokens as above, so a search asks for each ASCII word
in both forms (``backends/sql/search.py``).
"""

from __future__ import annotations

from binascii import hexlify
from collections.abc import Callable

from backends.search import words_of

TOKEN_MARK = "w"
ROOM_MARK = "room"  # then the room's id: never a word's token, which starts with the word mark
MAX_TOKEN_BYTES = 41  # the mark and two letters a byte: 83 characters, within InnoDB's 84
MIN_TOKEN_CHARS = 3  # the shortest word token: the mark and one byte
MAX_TOKEN_CHARS = len(TOKEN_MARK) + 2 * MAX_TOKEN_BYTES
_HEX_TO_LETTERS = str.maketrans("0123456789abcdef", "abcdefghijklmnop")
_HEX_BYTES_TO_LETTERS = bytes.maketrans(b"0123456789abcdef", b"abcdefghijklmnop")
_MAX_LETTERS = 2 * MAX_TOKEN_BYTES


def word_token(word: str) -> str:
    """A word (case-folded) as the index holds it."""
    return TOKEN_MARK + word.encode("utf-8")[:MAX_TOKEN_BYTES].hex().translate(_HEX_TO_LETTERS)


def room_token(room_id: int) -> str:
    """The token every message of a room holds beside its words: the index finds one room's messages only."""
    return f"{ROOM_MARK}{room_id}"


def search_words(room_id: int, text: str) -> str:
    """``messages.search_words`` of a message: its room's token and its words' tokens, each once, between
    spaces (and a space at each end, so that ``LIKE '% token %'`` finds the first and the last)."""
    words = dict.fromkeys(words_of(text))
    if not words:
        return f" {room_token(room_id)}  "
    # Every word at once, as ``word_token`` writes each, in about half the time: the words joined by spaces
    # are written in letters and cut at each space's "ca" (0x20). Any other "ca" would straddle two bytes,
    # the second under 0x10, and a word holds no byte under 0x30 (no word character folds to one, and
    # UTF-8 writes none inside another character).
    letters = hexlify(" ".join(words).encode("utf-8")).translate(_HEX_BYTES_TO_LETTERS).decode("ascii").split("ca")
    if max(map(len, letters)) > _MAX_LETTERS:
        letters = [token[:_MAX_LETTERS] for token in letters]
    return f" {room_token(room_id)} {TOKEN_MARK}{f' {TOKEN_MARK}'.join(letters)} "


def sqlite_search_words(room_id: int, text: str) -> str:
    """``messages.search_words`` of a message on SQLite: its room's token and, for a text in ASCII, the text
    itself (its words are what the index's tokenizer reads), else ``search_words``'s tokens."""
    if text.isascii():
        return f" {room_token(room_id)} {text} "
    return search_words(room_id, text)


def search_words_for(kind: str) -> Callable[[int, str], str]:
    """What the writer stores in ``messages.search_words`` on a database of ``kind``."""
    return sqlite_search_words if kind == "sqlite" else search_words

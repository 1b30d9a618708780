"""Searching a room's messages: what a word is, how a query matches a message, and a page of results.

Defined once, here, so that every backend finds the same messages: a **word** is a run of Unicode word
characters (letters, digits, ``_``: Python's ``\\w``) in the text put in NFC, compared after Unicode case
folding (``str.casefold``: ``Straße`` holds the word ``strasse``). A message matches a query when it holds
every word of the query as a whole word, except that the query's last word may be the start of one
(``SearchQuery.prefix``). The SQL backends narrow the candidates with their own full-text index
and then keep those this matcher accepts; the memory and Redis backends read their messages newest first
and keep those it accepts.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from backends.messages import StoredMessage

WORD = re.compile(r"\w+")

# The memory and Redis backends read at most this many messages per search, newest first (see ``SearchPage``).
SEARCH_SCAN_MESSAGES = 10_000


def words_of(text: str) -> list[str]:
    """The words of ``text``, case-folded, in order (repeats kept)."""
    if text.isascii():
        # The same words, faster: ASCII is in NFC already, and folds to lower case without moving a boundary.
        return WORD.findall(text.lower())
    # Each word folded on its own: folding may add a character that is no word character (İ is i and a
    # combining dot), which must not split the word it came from.
    return [word.casefold() for word in WORD.findall(unicodedata.normalize("NFC", text))]


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """What a search looks for: ``whole_words`` (case-folded, no repeats), each to be found as a whole
    word, and ``prefix``, the query's last word, to be found as the start of a word (``None``: the query
    ended past its last word, which is then one of the whole words)."""

    whole_words: tuple[str, ...]
    prefix: str | None

    @classmethod
    def parse(cls, text: str) -> SearchQuery:
        """The query a client typed: its last word is a prefix unless something other than a word
        character follows it (``"hel"`` finds ``hello``; ``"hel "`` and ``"hel."`` only ``hel``)."""
        normalized = unicodedata.normalize("NFC", text)
        words = words_of(normalized)
        if words and WORD.fullmatch(normalized[-1]):
            return cls(tuple(dict.fromkeys(words[:-1])), words[-1])
        return cls(tuple(dict.fromkeys(words)), None)

    @property
    def is_empty(self) -> bool:
        """A query with no word at all (only spaces or punctuation): it matches nothing."""
        return not self.whole_words and self.prefix is None

    def matches(self, text: str) -> bool:
        """Whether a message's text holds every word of the query."""
        if self.is_empty:
            return False
        # Each word a message holds is part of its whole text folded, so a text that lacks one of the
        # query's words even as a part is no match: most texts are told so without being split into words.
        folded = text.lower() if text.isascii() else unicodedata.normalize("NFC", text).casefold()
        if not all(word in folded for word in self.whole_words) or (self.prefix or "") not in folded:
            return False
        held = set(words_of(text))
        if not all(word in held for word in self.whole_words):
            return False
        prefix = self.prefix
        return prefix is None or any(word.startswith(prefix) for word in held)


@dataclass(frozen=True, slots=True)
class SearchPage:
    """Matching messages, newest first. ``has_more``: older matches may exist, to be read with
    ``before`` the oldest id of this page. The memory and Redis backends read at most
    ``SEARCH_SCAN_MESSAGES`` messages per search: when they stop there with older messages unread,
    ``has_more`` is true however many matched."""

    messages: list[StoredMessage]
    has_more: bool

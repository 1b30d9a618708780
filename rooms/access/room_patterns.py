"""Sets of rooms named by labels and ``prefix*`` patterns: ``rooms.private`` in the config, and the
``rooms`` claim of a token (the rooms it may enter).

A pattern is a label (that room), or a prefix of one followed by ``*`` (every room whose label starts
with it; ``*`` alone is every room). Like labels, patterns are case-sensitive. Nothing else is a
pattern: a ``*`` in the middle, or a character a label cannot hold, is refused rather than read as
something the operator did not mean.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_LABEL_CHARS = re.compile(r"[A-Za-z0-9_-]*")
MAX_LABEL_CHARS = 50


class PatternError(ValueError):
    """A pattern that names no set of labels; the message says why."""


def check_pattern(pattern: str) -> str:
    """``pattern`` itself, or ``PatternError`` saying what is wrong with it."""
    prefix = pattern.removesuffix("*")
    if "*" in prefix:
        raise PatternError(f"{pattern!r}: '*' may only end a pattern ('team-*')")
    if not _LABEL_CHARS.fullmatch(prefix):
        raise PatternError(f"{pattern!r}: a label holds only A-Z, a-z, 0-9, '_' and '-'")
    if len(prefix) > MAX_LABEL_CHARS:
        raise PatternError(f"{pattern!r}: longer than a label ({MAX_LABEL_CHARS} characters)")
    if not pattern:
        raise PatternError("'': an empty pattern names no room")
    return pattern


class RoomPatterns:
    """The rooms some labels and ``prefix*`` patterns name; checked when made (``PatternError``)."""

    __slots__ = ("_labels", "_prefixes")

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        labels: set[str] = set()
        prefixes: set[str] = set()
        for pattern in patterns:
            check_pattern(pattern)
            if pattern.endswith("*"):
                prefixes.add(pattern[:-1])
            else:
                labels.add(pattern)
        self._labels = frozenset(labels)
        self._prefixes = tuple(sorted(prefixes))  # a tuple: what str.startswith takes

    def matches(self, label: str) -> bool:
        return label in self._labels or (bool(self._prefixes) and label.startswith(self._prefixes))

    def covers_every_room(self) -> bool:
        """Whether every label matches (the pattern ``*``)."""
        return "" in self._prefixes

    def __bool__(self) -> bool:
        return bool(self._labels or self._prefixes)


EVERY_ROOM = RoomPatterns(["*"])
NO_ROOM = RoomPatterns()

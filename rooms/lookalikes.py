"""When two handles look the same (docs/protocol.md, "Moderation"), and what a handle may not hold because it
draws nothing (docs/protocol.md, "What a client sends").

``lookalike_key`` is what a handle ban compares: NFKC (fullwidth and mathematical letters become plain
ones), case folding, no white space or default-ignorable code point anywhere, and every character replaced
by its skeleton as Unicode TR 39 defines it from its table of confusables (``confusables.txt``, which
confusable-homoglyphs ships as pairs). Handles with the same key look the same.

The package keeps each line of the table both ways round, so in a group of two single characters the
prototype cannot be told from the character that maps to it; a comparison needs no more than that every
member of a group has the same key, so such a group is keyed by its smallest member. A prototype of
several characters ("rn" for "m") is always the table's target: its group is keyed by it, each of its
characters keyed in turn.

One mapping goes beyond TR 39, because bans ignore case: some small letters look like a Latin letter only
in capitals. Cyrillic "м", "т", "н", "в", "к" are drawn as small capitals M, T, H, B, K, and TR 39 maps them
to "ʍ", "ᴛ", "ʜ", "ʙ", "ĸ", like no Latin letter. A small letter whose own skeleton is that of no Latin
letter, while its capital's is that of a Latin capital, is keyed as that Latin letter, so that a Cyrillic
"ѕраммег" is "spammer".
"""

from __future__ import annotations

import string
import unicodedata
from collections import defaultdict
from functools import cache, lru_cache

import regex

DEFAULT_IGNORABLE = regex.compile(r"\p{Default_Ignorable_Code_Point}")
_UNSEEN = regex.compile(r"[\p{White_Space}\p{Default_Ignorable_Code_Point}]+")
# The package writes right-to-left text between LEFT-TO-RIGHT MARKs (taken from the table's comments).
_LEFT_TO_RIGHT_MARK = "\u200e"


# Unicode's White_Space, all of it below U+3001 (``WHITE_SPACE_ENDS``): as ``str.strip``'s characters it costs
# next to nothing on every message, where the regular expression cost microseconds.
WHITE_SPACE_ENDS = 0x3001
WHITE_SPACE = "".join(char for char in map(chr, range(WHITE_SPACE_ENDS)) if regex.fullmatch(r"\p{White_Space}", char))


def strip_white_space(text: str) -> str:
    """``text`` without the white space (Unicode's White_Space) around it; ``str.strip()`` would also take
    the controls U+001C to U+001F."""
    return text.strip(WHITE_SPACE)


@lru_cache(maxsize=4096)
def lookalike_key(handle: str) -> str:
    """The same for every handle that looks like ``handle``."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", handle).casefold())
    keyed = _keyed(_UNSEEN.sub("", folded))
    # A skeleton may be a capital (Cherokee small letters fold to capitals, whose skeletons are Latin
    # capitals): folded and keyed once more, it meets the Latin small letter.
    return _keyed(keyed.casefold())


def _keyed(text: str) -> str:
    keys = _skeleton_keys()
    return "".join(keys.get(char, char) for char in unicodedata.normalize("NFD", text))


@cache
def _skeleton_keys() -> dict[str, str]:
    """Each character of the table of confusables, and the key of its group (read once, at the first ban
    of a handle: a megabyte of JSON)."""
    from confusable_homoglyphs.confusables import confusables_data

    table: dict[str, list[dict[str, str]]] = confusables_data
    parent: dict[str, str] = {}

    def group_of(text: str) -> str:
        while parent.get(text, text) != text:
            text = parent[text]
        return text

    for source, others in table.items():
        for other in others:
            first = group_of(source.replace(_LEFT_TO_RIGHT_MARK, ""))
            second = group_of(other["c"].replace(_LEFT_TO_RIGHT_MARK, ""))
            if first != second:
                parent[first] = second
    members: dict[str, list[str]] = defaultdict(list)
    for text in parent.keys() | set(parent.values()):
        members[group_of(text)].append(text)
    keys: dict[str, str] = {}
    for group in members.values():
        longer = [text for text in group if len(text) > 1]
        prototype = longer[0] if longer else min(group)
        for text in group:
            if len(text) == 1:
                keys[text] = prototype
    for char, prototype in keys.items():
        if len(prototype) > 1:
            keys[char] = "".join(keys.get(part, part) for part in prototype)
    _key_small_capitals(keys)
    return keys


def _key_small_capitals(keys: dict[str, str]) -> None:
    """Key a small letter that looks like a Latin one only as a capital as that Latin letter."""
    looking_alike: dict[str, list[str]] = defaultdict(list)
    for char, key in keys.items():
        looking_alike[key].append(char)
    latin = {keys.get(letter, letter) for letter in string.ascii_lowercase}
    for capital in string.ascii_uppercase:
        for lookalike in looking_alike[keys.get(capital, capital)]:
            small = lookalike.lower()
            if len(small) == 1 and small != lookalike and keys.get(small, small) not in latin:
                keys[small] = keys.get(capital.lower(), capital.lower())

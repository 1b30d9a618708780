"""The key handle bans compare (rooms/lookalikes.py): the same for handles that look the same, different
for handles that differ."""

from __future__ import annotations

import sys

import pytest
import regex

from rooms.lookalikes import WHITE_SPACE, lookalike_key, strip_white_space

SPAMMER = [
    "spammer",
    "Spammer",
    "SPAMMER",
    "spam\u034fmer",  # COMBINING GRAPHEME JOINER
    "spammer\ufe0f",  # a variation selector
    "spammer\u3164",  # HANGUL FILLER
    "spam\u200bmer",  # ZERO WIDTH SPACE
    "spammer ",
    " s p a m m e r\t",
    "\uff53\uff50\uff41\uff4d\uff4d\uff45\uff52",  # fullwidth
    "\U0001d42c\U0001d429\U0001d41a\U0001d426\U0001d426\U0001d41e\U0001d42b",  # mathematical bold
    "\u0455\u0440\u0430\u043c\u043c\u0435\u0433",  # Cyrillic
    "\u0405\u0420\u0410\u041c\u041c\u0415\u0413",  # Cyrillic capitals
    "s\u0440\u0430mm\u0435r",  # Cyrillic among Latin
    "\u13da\u13e2\u13aa\u13b7\u13b7\u13ac\u13a1",  # Cherokee
    "sparnrner",  # TR 39: "rn" looks like "m"
]


@pytest.mark.parametrize("handle", SPAMMER)
def test_every_handle_that_looks_like_spammer_has_its_key(handle):
    assert lookalike_key(handle) == lookalike_key("spammer")


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("\u0430dmin", "admin"),  # Cyrillic a
        ("\u03bfscar", "oscar"),  # Greek omicron
        ("r\u043en", "ron"),  # Cyrillic o
        ("\u0422\u041e\u041c", "tom"),  # Cyrillic capitals
        ("stra\u00dfe", "STRASSE"),  # case folding
        ("e\u0301", "\u00e9"),  # normal forms
    ],
)
def test_confusable_letters_share_a_key(one, other):
    assert lookalike_key(one) == lookalike_key(other)


@pytest.mark.parametrize(
    ("one", "other"),
    [("spammer", "spamer"), ("spammer", "scammer"), ("ann", "anna"), ("zoe", "zo\u00eb"), ("\u5c71\u7530", "\u5c71")],
)
def test_handles_that_differ_have_different_keys(one, other):
    assert lookalike_key(one) != lookalike_key(other)


def test_white_space_around_is_unicode_white_space_and_nothing_else():
    assert strip_white_space("\u3000\u00a0 ann li\t\u2029") == "ann li"
    assert strip_white_space("\x1cann\x1f") == "\x1cann\x1f"  # controls: refused, not dropped


def test_the_white_space_stripped_around_a_handle_is_all_of_unicodes():
    everywhere = "".join(chr(c) for c in range(sys.maxunicode + 1) if regex.fullmatch(r"\p{White_Space}", chr(c)))
    assert WHITE_SPACE == everywhere
    assert strip_white_space("\u3000\u00a0 ann\u2028\u205f") == "ann"
    assert strip_white_space("\x1cann\x1f") == "\x1cann\x1f"  # controls are refused, not dropped

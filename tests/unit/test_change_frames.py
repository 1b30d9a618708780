"""The frames of changes to messages (rooms/change_frames.py): what a client's edit, delete and react frames
decode to or why they are refused, and the frames the server sends for each change."""

from __future__ import annotations

import json

import pytest

from backends.changes import ChangeKind, MessageChange
from rooms.change_frames import Delete, Edit, React, decode_frame, encode_change
from rooms.protocol import ErrorCode, Hello, Limits, ProtocolError, key_author

LIMITS = Limits()
KEY = "k" * 22


def decoded(frame: dict) -> object:
    return decode_frame(json.dumps(frame), "lobby", LIMITS)


def refused(frame: dict) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        decoded(frame)
    return caught.value


@pytest.mark.parametrize(
    "emoji",
    ["👍", "❤️", "👍🏽", "👨‍👩‍👧", "🏳️‍🌈", "🇫🇷", "1️⃣", "🧑🏿‍🤝‍🧑🏻", "🏴󠁧󠁢󠁳󠁣󠁴󠁿"],
)
def test_one_rgi_emoji_of_any_kind_is_a_reaction(emoji):
    assert decoded({"type": "react", "id": "42", "emoji": emoji}) == React("42", emoji, True)


@pytest.mark.parametrize("emoji", ["👍👍", "👍 ", "a", "", ":+1:", "👍\u200d", "🇿🇿", "👍" * 20, "\ufe0f"])
def test_anything_but_one_emoji_is_refused(emoji):
    error = refused({"type": "react", "id": "42", "emoji": emoji})
    assert error.code is ErrorCode.INVALID_MESSAGE and "emoji" in error.reason


def test_a_reaction_is_taken_back_with_on_false_and_on_must_be_a_boolean():
    assert decoded({"type": "react", "id": "42", "emoji": "🎉", "on": False}) == React("42", "🎉", False)
    for on in ("false", 0, None, [True]):
        assert "'on'" in refused({"type": "react", "id": "42", "emoji": "🎉", "on": on}).reason


def test_an_edit_checks_its_text_as_a_message_s_and_hashes_its_author_key():
    edit = decoded({"type": "edit", "id": "42", "message": "e\u0301", "author_key": KEY})
    assert edit == Edit("42", "\u00e9", key_author(KEY)) and KEY not in str(edit)
    assert decoded({"type": "edit", "id": "42", "message": "x"}) == Edit("42", "x", None)
    for bad in (" ", "", "x" * 4001, 7):
        assert "'message'" in refused({"type": "edit", "id": "42", "message": bad}).reason
    assert "'message' is missing" in refused({"type": "edit", "id": "42"}).reason


@pytest.mark.parametrize("key", ["k" * 21, "k" * 65, "k" * 21 + "!", "k" * 21 + "é", 12345, ["k" * 22]])
def test_an_author_key_of_the_wrong_shape_is_refused(key):
    for frame in ({"type": "edit", "id": "1", "message": "x"}, {"type": "delete", "id": "1"}):
        assert "'author_key'" in refused({**frame, "author_key": key}).reason


def test_an_author_key_is_22_to_64_characters_and_each_key_has_its_own_hash():
    assert decoded({"type": "delete", "id": "9", "author_key": "A-z_0" * 12 + "abcd"}) == Delete(
        "9", key_author("A-z_0" * 12 + "abcd")
    )
    assert key_author("a" * 22) != key_author("a" * 23)


def test_a_change_frame_needs_a_string_id():
    for frame in ({"type": "delete"}, {"type": "delete", "id": 42}, {"type": "react", "emoji": "👍"}):
        assert "'id'" in refused(frame).reason


def test_other_frames_decode_as_before():
    assert decoded({"type": "hello", "handle": "ann"}) == Hello("ann")
    message = decoded({"handle": "ann", "message": "hi", "reply_to": "41", "author_key": KEY})
    assert (message.reply_to, message.author) == ("41", key_author(KEY))  # type: ignore[attr-defined]
    assert "'reply_to'" in refused({"handle": "ann", "message": "hi", "reply_to": 41}).reason


def test_each_change_is_sent_as_its_frame():
    edit = MessageChange("lobby", "42", "57", ChangeKind.EDIT, message="new", edited="2026-12-06T10:00:00+00:00")
    assert json.loads(encode_change(edit)) == {
        "type": "edit",
        "id": "42",
        "at": "57",
        "message": "new",
        "edited": "2026-12-06T10:00:00+00:00",
    }
    assert json.loads(encode_change(MessageChange("lobby", "42", "58", ChangeKind.DELETE))) == {
        "type": "delete",
        "id": "42",
        "at": "58",
    }
    counts = MessageChange("lobby", "42", "59", ChangeKind.REACTIONS, reactions=(("👍", 3), ("🎉", 1)))
    assert json.loads(encode_change(counts)) == {
        "type": "reactions",
        "id": "42",
        "at": "59",
        "reactions": {"👍": 3, "🎉": 1},
    }
    none_left = MessageChange("lobby", "42", "60", ChangeKind.REACTIONS)
    assert json.loads(encode_change(none_left))["reactions"] == {}

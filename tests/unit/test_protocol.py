"""The wire format: every bad input docs/protocol.md names gets the answer it names."""

from __future__ import annotations

import gc
import json
import struct
import tracemalloc

import pytest

from backends.base import NewMessage, RoomPresence, StoredMessage
from rooms.protocol import (
    Feature,
    Hello,
    Limits,
    ProtocolError,
    Typing,
    decode_client_frame,
    encode,
    encode_message,
    encode_presence,
    encode_typing,
    is_valid_label,
    parse_features,
    text_frame,
)

LIMITS = Limits(max_handle_chars=8, max_message_chars=20)


def decode_error(frame: str | bytes) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        decode_client_frame(frame, "lobby", LIMITS)
    return caught.value


def test_channels_example_frame_decodes():
    message = decode_client_frame('{"handle": "ann", "message": "hello"}', "lobby", LIMITS)
    assert (message.handle, message.message, message.client_id) == ("ann", "hello", None)


def test_type_message_and_client_id_are_accepted():
    frame = '{"type": "message", "handle": "a", "message": "b", "client_id": "c1"}'
    message = decode_client_frame(frame, "lobby", LIMITS)
    assert message.client_id == "c1"


def test_user_and_moderator_in_a_frame_are_ignored():
    # Only a token says who sent a message (the room layer's Identity.author): a frame cannot.
    for extra in ('"user": "admin", "moderator": true', '"user": 7, "moderator": "yes"', '"user": null'):
        message = decode_client_frame(f'{{"handle": "ann", "message": "hi", {extra}}}', "lobby", LIMITS)
        assert isinstance(message, NewMessage) and (message.user, message.moderator) == (None, False)


STAMP = "2026-11-24T06:21:56.123456+00:00"


def test_a_message_without_user_or_moderator_encodes_as_it_always_did():
    # The seed's 2016 client gets exactly the frame it always got.
    assert encode_message(StoredMessage("42", "lobby", "ann", "hello", STAMP)) == (
        '{"type":"message","id":"42","room":"lobby","handle":"ann","message":"hello",'
        '"timestamp":"2026-11-24T06:21:56.123456+00:00"}'
    )
    assert encode_message(StoredMessage("42", "lobby", "ann", "hello", STAMP, "c1", None, False)).endswith(
        '"timestamp":"2026-11-24T06:21:56.123456+00:00","client_id":"c1"}'
    )


def test_a_message_names_its_user_and_says_moderator_only_when_true():
    signed = json.loads(encode_message(StoredMessage("42", "lobby", "Ann", "hi", STAMP, "c1", "user-7", False)))
    assert (signed["user"], "moderator" in signed) == ("user-7", False)
    moderator = json.loads(encode_message(StoredMessage("43", "lobby", "mod", "hi", STAMP, None, None, True)))
    assert (moderator["moderator"], "user" in moderator) == (True, False)


@pytest.mark.parametrize("frame", ["not json", "{", "", '{"handle": "a", "message": "b"} trailing'])
def test_not_json_is_invalid_json(frame):
    error = decode_error(frame)
    assert error.code == "invalid_json"
    assert "JSON" in error.reason


@pytest.mark.parametrize("frame", ["[]", '"text"', "42", "null", "true"])
def test_not_an_object_is_invalid_message(frame):
    error = decode_error(frame)
    assert error.code == "invalid_message" and "object" in error.reason


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"message": "hi"}, "handle"),
        ({"handle": "ann"}, "message"),
        ({"handle": 5, "message": "hi"}, "handle"),
        ({"handle": "ann", "message": ["hi"]}, "message"),
        ({"handle": "ann", "message": None}, "message"),
        ({"handle": "ann", "message": "hi", "client_id": 7}, "client_id"),
        ({"handle": "ann", "message": "hi", "client_id": ""}, "client_id"),
        ({"handle": "ann", "message": "hi", "client_id": "x" * 65}, "client_id"),
        ({"handle": "ann", "message": "hi", "type": "poll"}, "type"),
    ],
)
def test_missing_or_mistyped_fields_are_named(payload, field):
    error = decode_error(json.dumps(payload))
    assert error.code == "invalid_message"
    assert f"'{field}'" in error.reason


@pytest.mark.parametrize(
    ("handle", "message", "field"),
    [
        ("", "hi", "handle"),
        ("   ", "hi", "handle"),
        ("ann", "", "message"),
        ("ann", " \n\t", "message"),
        ("a" * 9, "hi", "handle"),
        ("ann", "m" * 21, "message"),
        ("an\nn", "hi", "handle"),
        ("an\x07n", "hi", "handle"),
        ("ann", "nul\x00here", "message"),
    ],
)
def test_empty_overlong_and_control_characters_are_refused(handle, message, field):
    error = decode_error(json.dumps({"handle": handle, "message": message}))
    assert error.code == "invalid_message"
    assert f"'{field}'" in error.reason


def test_lone_surrogate_is_refused():
    error = decode_error('{"handle": "ann", "message": "bad \\ud800 half"}')
    assert error.code == "invalid_message" and "'message'" in error.reason


def test_limits_count_characters_not_bytes():
    message = decode_client_frame(json.dumps({"handle": "🙂" * 8, "message": "é" * 20}), "lobby", LIMITS)
    assert message.handle == "🙂" * 8


def test_message_keeps_newlines_and_surrounding_spaces():
    message = decode_client_frame(json.dumps({"handle": "ann", "message": "  two\nlines "}), "lobby", LIMITS)
    assert message.message == "  two\nlines "


def decode(handle: str, message: str = "hi"):
    return decode_client_frame(json.dumps({"handle": handle, "message": message}), "lobby", LIMITS)


@pytest.mark.parametrize("handle", ["\u202eann", "ann\u2066", "a\u200bnn", "\ufeffann", "an\u00adn", "a\u200dn"])
def test_format_characters_in_a_handle_are_refused(handle):
    error = decode_error(json.dumps({"handle": handle, "message": "hi"}))
    assert error.code == "invalid_message"
    assert "'handle'" in error.reason and "format characters" in error.reason


@pytest.mark.parametrize(
    ("handle", "named"),
    [
        ("spa\u034fmer", "U+034F"),  # COMBINING GRAPHEME JOINER
        ("spammer\ufe0f", "U+FE0F"),  # a variation selector
        ("span\U000e0100", "U+E0100"),  # a variation selector of the supplement
        ("spammer\u3164", "U+3164"),  # HANGUL FILLER after visible letters
        ("an\u115fn", "U+115F"),
        ("ann\u17b4", "U+17B4"),  # a Khmer vowel that draws nothing
        ("\u2065ann", "U+2065"),  # unassigned, yet default-ignorable
    ],
)
def test_default_ignorable_characters_in_a_handle_are_refused(handle, named):
    error = decode_error(json.dumps({"handle": handle, "message": "hi"}))
    assert error.code == "invalid_message"
    assert error.reason.startswith("field 'handle' must not contain") and error.reason.endswith(named)


@pytest.mark.parametrize(
    ("handle", "stored"),
    [("spammer ", "spammer"), ("\u3000ann\t", "ann"), ("\u00a0Ann Li\u2029", "Ann Li"), ("e\u0301 ", "\u00e9")],
)
def test_white_space_around_a_handle_is_dropped_and_counts_for_nothing(handle, stored):
    assert decode(handle).handle == stored
    assert decode(handle + " " * LIMITS.max_handle_chars).handle == stored  # not counted against the limit
    assert decode_client_frame(json.dumps({"type": "hello", "handle": handle}), "lobby", LIMITS) == Hello(stored)


def test_white_space_inside_a_message_or_around_it_is_kept():
    assert decode("ann", " hi ").message == " hi "


@pytest.mark.parametrize(
    ("handle", "message", "field"),
    [
        ("\u3164", "hi", "handle"),  # HANGUL FILLER, a letter that draws nothing
        ("\u115f\u1160", "hi", "handle"),
        ("\uffa0", "hi", "handle"),
        ("\u0301", "hi", "handle"),  # a combining mark alone
        ("\u3000", "hi", "handle"),
        ("ann", "\u200b", "message"),
        ("ann", "\u200b\u200d \u2028", "message"),
        ("ann", "\u3164\u2800", "message"),
        ("ann", "\u0301\u0302", "message"),
        ("ann", "\u202e\u202c\n", "message"),
    ],
)
def test_a_handle_or_message_with_nothing_visible_is_refused(handle, message, field):
    error = decode_error(json.dumps({"handle": handle, "message": message}))
    assert error.code == "invalid_message"
    assert f"field '{field}' must not be empty" in error.reason


@pytest.mark.parametrize(
    "handle",
    # Latin letters not named LATIN (a modifier letter, an ordinal) count as Latin too.
    ["\u0430dmin", "p\u0430ypal", "\u0391nn", "\u0410nn\u0430", "\u02b0\u0430", "\u00aa\u0430"],
)
def test_a_handle_mixing_lookalike_scripts_is_refused(handle):
    error = decode_error(json.dumps({"handle": handle, "message": "hi"}))
    assert error.code == "invalid_message" and error.reason.startswith("field 'handle' mixes scripts")


@pytest.mark.parametrize(
    "handle", ["ann", "\u0410\u043d\u043d\u0430", "\u03a9\u03bc\u03ad\u03b3\u03b1", "山田", "ann_42", "Zoë", "ann 山"]
)
def test_handles_in_one_script_are_taken(handle):
    assert decode(handle).handle == handle


def test_messages_may_hold_format_characters_and_mix_scripts():
    text = "\U0001f469\u200d\U0001f4bb \u0430dmin \u202eabc"  # a ZWJ emoji, Cyrillic among Latin, an override
    assert decode_client_frame(json.dumps({"handle": "ann", "message": text}), "lobby", Limits(8, 40)).message == text


def test_handle_and_message_are_stored_in_nfc_and_counted_so():
    message = decode("e\u0301" * 8, "cafe\u0301")  # 16 code points, 8 in NFC: within the limit
    assert (message.handle, message.message) == ("\u00e9" * 8, "caf\u00e9")


def test_binary_frame_is_invalid_message():
    error = decode_error(b'{"handle": "ann", "message": "hi"}')
    assert error.code == "invalid_message" and "binary" in error.reason


@pytest.mark.parametrize("label", ["a", "lobby", "Quiet-River_4821", "x" * 50])
def test_valid_labels(label):
    assert is_valid_label(label)


@pytest.mark.parametrize(
    "label", ["", "x" * 51, "has space", "dots.no", "ünï", "new", "api", "chat", "static", "healthz", "metrics", "a/b"]
)
def test_invalid_or_reserved_labels(label):
    assert not is_valid_label(label)


def test_reserved_labels_are_case_sensitive_like_every_label():
    assert is_valid_label("New") and is_valid_label("API")


def test_encode_is_compact_and_keeps_unicode():
    assert encode({"a": "é <b>", "n": 1}) == '{"a":"é <b>","n":1}'


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 70000])
def test_text_frame_header_lengths(size):
    frame = text_frame("x" * size)
    assert frame[0] == 0x81
    if size < 126:
        assert frame[1] == size and len(frame) == 2 + size
    elif size <= 0xFFFF:
        assert frame[1] == 126 and struct.unpack("!H", frame[2:4])[0] == size
    else:
        assert frame[1] == 127 and struct.unpack("!Q", frame[2:10])[0] == size
    assert frame.endswith(b"x" * size)


def test_framing_leaves_nothing_behind_after_the_frames_are_gone():
    # struct.pack("fmt") would cache a compiled format at its first use: made during a crowd, it outlives it.
    struct._clearcache()
    gc.collect()
    tracemalloc.start()
    try:
        frames = [text_frame("x" * size) for size in (1, 200, 70000)]
        del frames
        left = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(True, text_frame.__code__.co_filename)])
    finally:
        tracemalloc.stop()
    assert left.statistics("lineno") == []


def test_hello_and_typing_frames_decode():
    assert decode_client_frame('{"type": "hello", "handle": "ann"}', "lobby", LIMITS) == Hello("ann")
    assert decode_client_frame('{"type": "typing"}', "lobby", LIMITS) == Typing(None)
    assert decode_client_frame('{"type": "typing", "handle": "bob"}', "lobby", LIMITS) == Typing("bob")


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ('{"type": "hello"}', "field 'handle' is missing"),
        ('{"type": "hello", "handle": 7}', "field 'handle' must be a string"),
        ('{"type": "hello", "handle": " "}', "field 'handle' must not be empty"),
        ('{"type": "hello", "handle": "a\\u0007"}', "control characters"),
        ('{"type": "hello", "handle": "ninechars"}', "longer than 8"),
        ('{"type": "typing", "handle": ["ann"]}', "field 'handle' must be a string"),
        ('{"type": "typing", "handle": "a\\u202eb"}', "format characters"),
        ('{"type": "hello", "handle": "a\\u034fb"}', "U+034F"),
    ],
)
def test_a_hello_or_typing_handle_is_checked_like_a_messages(frame, reason):
    error = decode_error(frame)
    assert error.code == "invalid_message" and reason in error.reason


@pytest.mark.parametrize(
    ("query", "features"),
    [
        ("", set()),
        ("presence", {Feature.PRESENCE}),
        ("presence,typing,deletes", {Feature.PRESENCE, Feature.TYPING, Feature.DELETES}),
        ("typing,unknown,,presence", {Feature.PRESENCE, Feature.TYPING}),
        ("Presence", set()),
    ],
)
def test_features_asked_for_are_read_and_unknown_ones_ignored(query, features):
    assert parse_features(query) == features


def test_presence_and_typing_frames_are_encoded_as_the_protocol_says():
    assert json.loads(encode_presence(RoomPresence(3, ("ann", "bob")))) == {
        "type": "presence",
        "online": 3,
        "handles": ["ann", "bob"],
    }
    assert json.loads(encode_typing("ann")) == {"type": "typing", "handle": "ann"}

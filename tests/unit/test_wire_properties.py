"""Properties of the wire module (rooms/protocol.py), with hypothesis.

Whatever a client sends, the answer is a message that keeps the contract or a ``ProtocolError`` with a code
of the table (``invalid_json``, ``invalid_message``), never another exception; valid input decodes to exactly
what was sent, in NFC; what the server sends is compact JSON that reads back as ``message_payload``.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

import regex
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from backends.base import NewMessage, StoredMessage
from rooms.protocol import (
    ErrorCode,
    Limits,
    ProtocolError,
    decode_client_frame,
    encode_message,
    load_json,
    message_payload,
    validate_client_object,
)

ROOM = "lobby"
LIMITS = Limits(max_handle_chars=8, max_message_chars=20)
CLIENT_CODES = {ErrorCode.INVALID_JSON, ErrorCode.INVALID_MESSAGE}

# No example database of failures kept on disk, no deadline (timing must not fail a property).
PROPERTY = settings(max_examples=250, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

# -- strategies ---------------------------------------------------------------------------------------

# Every code point, surrogates included (hypothesis leaves them out unless told).
any_char = st.characters(exclude_categories=())
any_text = st.text(any_char, max_size=40)

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | any_text
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=20,
)

# Text that sits on an edge of the rules for LIMITS.
edge_text = st.sampled_from(
    [
        "",
        " ",
        "\t\n\r ",
        "\u3000\u2003",  # white space beyond ASCII
        "\x1c\x1d\x1e\x1f",  # str.strip() takes these for white space too
        "\x00",
        "ann\x00",
        "\ud800",
        "a\udfff",
        "\ud83d\ude80",  # two surrogates: unpaired in a str, one character once escaped as JSON
        "\U0001f680",
        "ann\x7f",
        "ann\n",
        "\u200b",  # zero width space: not white space, yet invisible
        "\u202eann",
        "ann\u2066",
        "\u3164",  # a letter that draws nothing
        "\u0301",  # a combining mark alone
        "e\u0301",  # NFC makes it one character
        "\u0430dmin",  # a Cyrillic a among Latin letters
        "spa\u034fm",  # a combining grapheme joiner: default-ignorable
        "ann\ufe0f",  # a variation selector
        " ann\u3000",  # white space around
        "\u0410\u043d\u043d\u0430",  # Cyrillic alone
        "\u03b1\u03b2",  # Greek alone
        "\U0001f469\u200d\U0001f4bb",  # an emoji sequence joined by ZWJ (a format character)
        "x" * 8,
        "x" * 9,
        "x" * 20,
        "x" * 21,
        "x" * 64,
        "x" * 65,
        "message",
        "0",
    ]
)
field_text = st.one_of(
    st.text(any_char, min_size=1, max_size=10),
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=8),
    st.text(any_char, min_size=7, max_size=70),  # around and over every limit
    edge_text,
)

# The rules of docs/protocol.md for text, written out independently of rooms/protocol.py.
BLANK_LETTERS = "\u115f\u1160\u3164\uffa0\u2800"
LOOKALIKE_SCRIPTS = {"LATIN", "CYRILLIC", "GREEK"}
DEFAULT_IGNORABLE = regex.compile(r"\p{Default_Ignorable_Code_Point}")
WHITE_SPACE_AROUND = regex.compile(r"^\p{White_Space}+|\p{White_Space}+$")


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def as_handle(text: str) -> str:
    """A handle as stored: without the white space around it, in NFC."""
    return nfc(WHITE_SPACE_AROUND.sub("", text))


def has_visible(text: str) -> bool:
    """Not only white space, controls, format characters, combining marks alone or blank letters."""
    return any(unicodedata.category(char)[0] not in "ZCM" and char not in BLANK_LETTERS for char in text)


def lookalike_scripts(text: str) -> set[str]:
    """The look-alike scripts of the letters, a letter not named by one (an ordinal, a modifier letter)
    counting as the letter its compatibility form is."""
    scripts = set()
    for char in text:
        if unicodedata.category(char).startswith("L"):
            named = unicodedata.name(char, "").split(" ")[0]
            if named not in LOOKALIKE_SCRIPTS:
                named = unicodedata.name(unicodedata.normalize("NFKD", char)[:1] or char, "").split(" ")[0]
            scripts.add(named)
    return scripts & LOOKALIKE_SCRIPTS


def handle_problem(text: str) -> bool:
    """Beyond the rules for any text: no control, format or default-ignorable character, one of the
    look-alike scripts."""
    return (
        any(unicodedata.category(char) in ("Cc", "Cf") or DEFAULT_IGNORABLE.match(char) for char in text)
        or len(lookalike_scripts(text)) > 1
    )


# Text the rules accept, for the round trip and to keep near-valid objects near.
handle_char = st.characters(exclude_categories=("Cs", "Cc", "Cf"))
message_char = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
client_id_char = st.characters(exclude_categories=("Cs", "Cc"))
valid_handles = st.text(handle_char, min_size=1, max_size=LIMITS.max_handle_chars).filter(
    lambda text: text == as_handle(text) and has_visible(text) and not handle_problem(text)
)
valid_messages = st.text(message_char, min_size=1, max_size=LIMITS.max_message_chars).filter(
    lambda text: text == nfc(text) and has_visible(text)
)
valid_client_ids = st.none() | st.text(client_id_char, min_size=1, max_size=64)
# A token's ``sub``: 1 to 256 printable characters (rooms/access/tokens.py).
subs = st.text(st.characters(exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")), min_size=1, max_size=256)


def near(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a valid value, else an edge of the rules, arbitrary text or any JSON value."""
    return st.one_of(valid, valid, valid, edge_text, field_text, json_values)


@st.composite
def near_valid_objects(draw: st.DrawFn) -> dict[str, Any]:
    fields = {
        "handle": near(valid_handles),
        "message": near(valid_messages),
        "client_id": near(valid_client_ids),
        "type": near(st.just("message")) | st.sampled_from(["Message", "Typing", "", " message", "message "]),
    }
    data: dict[str, Any] = {}
    for name, values in fields.items():
        # handle and message are there nine times in ten; client_id and type one time in two.
        if draw(st.integers(0, 9)) < (9 if name in ("handle", "message") else 5):
            data[name] = draw(values)
    return data


@st.composite
def deeply_nested(draw: st.DrawFn) -> tuple[str, bool]:
    """JSON text nested up to well past the interpreter's recursion limit, closed or not, alone or as a
    field of an otherwise valid message; and whether it is closed (well-formed, were it not so deep)."""
    depth = draw(st.integers(min_value=1, max_value=5000))
    opening, closing = draw(st.sampled_from([("[", "]"), ('{"a":', "}"), ('{"handle":', "}")]))
    inner = draw(st.sampled_from(["1", '"ann"', "[]", "{}", "null"]))
    closers = draw(st.sampled_from([depth, depth - 1, 0]))
    nested = opening * depth + inner + closing * closers
    where = draw(st.sampled_from(["alone", "handle", "message", "type", "client_id", "extra"]))
    if where != "alone":
        fields = {"handle": '"ann"', "message": '"hello"', where: nested}
        nested = "{" + ",".join(f"{json.dumps(name)}:{value}" for name, value in fields.items()) + "}"
    return nested, closers == depth


def dumped(value: Any, ensure_ascii: bool) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii)


# -- the checks ----------------------------------------------------------------------------------------


def has_unstorable(text: str) -> bool:
    return any(char == "\x00" or unicodedata.category(char) == "Cs" for char in text)


def assert_keeps_contract(message: NewMessage) -> None:
    """What every decoded message holds, whatever it was decoded from."""
    assert isinstance(message, NewMessage)
    assert message.room == ROOM
    for text, limit in ((message.handle, LIMITS.max_handle_chars), (message.message, LIMITS.max_message_chars)):
        assert isinstance(text, str)
        assert has_visible(text), "nothing visible"
        assert text == nfc(text), "not stored in NFC"
        assert len(text) <= limit
        assert not has_unstorable(text)
    assert not handle_problem(message.handle)
    assert message.handle == as_handle(message.handle), "white space around the handle"
    if message.client_id is not None:
        assert isinstance(message.client_id, str)
        assert 1 <= len(message.client_id) <= 64
        assert not has_unstorable(message.client_id)
    assert isinstance(message.timestamp, str) and message.timestamp.endswith("+00:00")


def decode_or_error(frame: str | bytes) -> NewMessage | ProtocolError:
    """Decode, allowing only the answers the contract has: a message or a ProtocolError of the table.
    Any other exception propagates and fails the property."""
    try:
        message = decode_client_frame(frame, ROOM, LIMITS)
    except ProtocolError as error:
        assert error.code in CLIENT_CODES
        assert isinstance(error.reason, str) and error.reason
        return error
    assert_keeps_contract(message)
    return message


def post_or_error(body: bytes) -> NewMessage | ProtocolError:
    """The HTTP POST path: the body's bytes through load_json, then the same validation."""
    try:
        message = validate_client_object(load_json(body), ROOM, LIMITS)
    except ProtocolError as error:
        assert error.code in CLIENT_CODES
        return error
    assert_keeps_contract(message)
    return message


def expected_error(data: Any) -> str | None:
    """The rules, written out independently of rooms/protocol.py: None if ``data`` is a valid message,
    else the field the error names (every such error is ``invalid_message``)."""
    if not isinstance(data, dict):
        return "object"
    if data.get("type", "message") != "message":
        return "type"
    for name in ("handle", "message"):
        if not isinstance(data.get(name), str):
            return name
    # The handle is checked whole before the message; lengths are counted in NFC, as stored.
    for name, limit in (("handle", LIMITS.max_handle_chars), ("message", LIMITS.max_message_chars)):
        text = as_handle(data[name]) if name == "handle" else nfc(data[name])
        if not has_visible(text) or len(text) > limit or has_unstorable(text):
            return name
        if name == "handle" and handle_problem(text):
            return name
    client_id = data.get("client_id")
    if client_id is not None and (
        not isinstance(client_id, str)
        or not 1 <= len(client_id) <= 64
        or has_unstorable(client_id)
        # Beyond README: rooms/protocol.py refuses control characters in a client id as in a handle.
        or any(unicodedata.category(char) == "Cc" for char in client_id)
    ):
        return "client_id"
    return None


# -- properties: anything at all -----------------------------------------------------------------------


@PROPERTY
@given(st.text(any_char, max_size=200))
@example("")
@example("{")
@example("\ud800")
@example('{"handle": "ann", "message": "hello"}')
def test_any_text_frame_decodes_or_is_a_table_error(frame):
    decode_or_error(frame)


@PROPERTY
@given(st.binary(max_size=200))
@example(b'{"handle": "ann", "message": "hello"}')
@example(b"\xff\xfe")
def test_binary_frames_are_invalid_message_and_post_bodies_decode_or_are_table_errors(body):
    outcome = decode_or_error(body)
    assert isinstance(outcome, ProtocolError) and outcome.code == ErrorCode.INVALID_MESSAGE
    post_or_error(body)


@PROPERTY
@given(json_values, st.booleans())
def test_any_json_value_decodes_or_is_invalid_message(value, ensure_ascii):
    outcome = decode_or_error(dumped(value, ensure_ascii))
    if isinstance(outcome, ProtocolError):
        assert outcome.code == ErrorCode.INVALID_MESSAGE  # it was valid JSON
    post_or_error(dumped(value, ensure_ascii=True).encode())


@PROPERTY
@given(near_valid_objects(), st.booleans())
@example({"handle": "ann", "message": "\u3000"}, True)
@example({"handle": "ann", "message": "hi", "client_id": "c\x00"}, True)
@example({"handle": "a\ud800", "message": "hi"}, False)
@example({"handle": "ann", "message": "hi", "client_id": None}, True)
@example({"handle": "ann", "message": "hi", "type": None}, True)
@example({"handle": "ann", "message": "\ud83d\ude80"}, True)  # escaped, a pair: one valid character
@example({"handle": "ann", "message": "\ud83d\ude80"}, False)  # raw in the text: two unpaired surrogates
def test_near_valid_objects_are_accepted_exactly_when_the_rules_say(data, ensure_ascii):
    frame = dumped(data, ensure_ascii)
    outcome = decode_or_error(frame)
    # The rules apply to what the frame says: escaped as JSON, two surrogates of a pair are one character.
    sent = json.loads(frame)
    problem = expected_error(sent)
    if problem is None:
        assert isinstance(outcome, NewMessage), f"refused a valid message: {outcome}"
        assert (outcome.handle, outcome.message, outcome.client_id) == (
            as_handle(sent["handle"]),
            nfc(sent["message"]),
            sent.get("client_id"),
        )
    else:
        assert isinstance(outcome, ProtocolError), f"accepted, but {problem!r} breaks the rules"
        assert outcome.code == ErrorCode.INVALID_MESSAGE
        assert problem in outcome.reason, f"{outcome.reason!r} does not name {problem!r}"


@PROPERTY
@given(deeply_nested())
@example(("[" * 100_000, False))
@example(('{"handle": "ann", "message": "hi", "type": ' + "[" * 3000 + "]" * 3000 + "}", True))
def test_deeply_nested_json_decodes_or_is_a_table_error(nested):
    frame, closed = nested
    outcome = decode_or_error(frame)
    if not closed:
        assert isinstance(outcome, ProtocolError) and outcome.code == ErrorCode.INVALID_JSON
    post_or_error(frame.encode())


# -- properties: valid input -----------------------------------------------------------------------------


@PROPERTY
@given(valid_handles, valid_messages, valid_client_ids, st.booleans(), st.booleans())
def test_valid_messages_round_trip_exactly(handle, text, client_id, with_type, ensure_ascii):
    data: dict[str, Any] = {"handle": handle, "message": text}
    if client_id is not None:
        data["client_id"] = client_id
    if with_type:
        data["type"] = "message"
    frame = dumped(data, ensure_ascii)
    message = decode_or_error(frame)
    assert isinstance(message, NewMessage), f"refused a valid message: {message}"
    assert (message.room, message.handle, message.message, message.client_id) == (ROOM, handle, text, client_id)
    posted = post_or_error(frame.encode())
    assert isinstance(posted, NewMessage)
    assert (posted.handle, posted.message, posted.client_id) == (handle, text, client_id)


labels = st.text(st.sampled_from("abcXYZ019_-"), min_size=1, max_size=50)
message_ids = st.integers(min_value=1, max_value=2**63 - 1).map(str) | st.builds(
    "{}-{}".format, st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)
)


@PROPERTY
@given(
    message_ids,
    labels,
    valid_handles,
    st.text(message_char, min_size=1, max_size=200),
    valid_client_ids,
    st.none() | subs,
    st.booleans(),
)
def test_encoded_message_is_compact_json_of_its_payload(message_id, room, handle, text, client_id, user, moderator):
    stamp = "2026-11-24T06:21:56.123456+00:00"
    stored = StoredMessage(message_id, room, handle, text, stamp, client_id, user, moderator)
    encoded = encode_message(stored)
    payload = message_payload(stored)
    assert json.loads(encoded) == payload
    assert encoded == json.dumps(payload, separators=(",", ":"), ensure_ascii=False)  # compact, UTF-8 as is
    assert "\n" not in encoded  # one frame, one line
    encoded.encode("utf-8")  # stored text never holds what UTF-8 cannot carry
    assert payload["type"] == "message" and payload["id"] == message_id and payload["room"] == room
    assert ("client_id" in payload) == (client_id is not None)
    assert payload.get("user") == user and ("user" in payload) == (user is not None)
    assert payload.get("moderator", False) is moderator  # true, or not there at all

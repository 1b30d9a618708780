"""``moderation.tokens`` entries: plain tokens or ``{name: ..., token: ...}``, how each holder is known in the
audit log, the errors that name an entry (never its token), and ``check-config``'s masking of both."""

from __future__ import annotations

import hashlib

import pytest
import yaml

from rooms.access.policy import AccessPolicy
from rooms.config.loading import load_config
from rooms.config.masking import MASK, describe
from rooms.errors import ConfigError
from tests.support.tokens import MODERATOR_TOKEN

ALICE = "alice-token-0123456789abcdef0123456789"
BOB = "bob-token-0123456789abcdef0123456789abc"


def loaded(tmp_path, text: str, environ: dict[str, str] | None = None):
    path = tmp_path / "rooms.yaml"
    path.write_text(text)
    return load_config(str(path), environ=environ or {})


def config_error(tmp_path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        loaded(tmp_path, text)
    return str(caught.value)


def test_entries_may_be_tokens_or_named_tokens_and_the_environment_adds_an_unnamed_one(tmp_path):
    text = f"moderation:\n  tokens:\n    - {MODERATOR_TOKEN}\n    - {{name: alice, token: {ALICE}}}\n"
    config = loaded(tmp_path, text, {"ROOMS_MODERATOR_TOKEN": BOB})
    assert [(entry.name, entry.token) for entry in config.moderation.tokens] == [
        (None, MODERATOR_TOKEN),
        ("alice", ALICE),
        (None, BOB),
    ]


def test_each_holder_is_known_by_the_name_or_a_short_fingerprint_never_the_token(tmp_path):
    text = f"moderation:\n  tokens: [{MODERATOR_TOKEN}, {{name: alice, token: {ALICE}}}]\n"
    access = AccessPolicy.from_config(loaded(tmp_path, text))
    fingerprint = "token:" + hashlib.sha256(MODERATOR_TOKEN.encode()).hexdigest()[:8]
    assert access.identify(MODERATOR_TOKEN).actor == fingerprint
    assert access.identify(ALICE).actor == "alice"
    assert access.identify(ALICE).moderator and access.moderates_every_room(access.identify(ALICE))


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        (f"[{MODERATOR_TOKEN}, {{name: alice, tokn: {ALICE}}}]", "moderation.tokens: entry 2: unknown key 'tokn'"),
        (f"[{{name: alice, token: {ALICE}}}, {{name: alice, token: {BOB}}}]", "moderation.tokens: entry 2: "),
        ("[{name: alice, token: too-short}]", "moderation.tokens: entry 1: the token is shorter than 32"),
        (f"[{MODERATOR_TOKEN}, {{name: alice}}]", "moderation.tokens: entry 2: has a name but no token"),
        (f"[{{name: '', token: {ALICE}}}]", "moderation.tokens: entry 1: 'name' must be"),
        (f"[{{name: 7, token: {ALICE}}}]", "moderation.tokens: entry 1: 'name' must be"),
        (f"[{{name: 'token:1234abcd', token: {ALICE}}}]", "moderation.tokens: entry 1: the name"),
        (f"[{MODERATOR_TOKEN}, [{ALICE}]]", "moderation.tokens: entry 2: is neither a token nor"),
        ("[12345678901234567890123456789012345]", "moderation.tokens: entry 1: the token must be a string"),
    ],
)
def test_a_bad_entry_is_an_error_naming_it_and_never_showing_a_token(tmp_path, entries, expected):
    message = config_error(tmp_path, f"moderation:\n  tokens: {entries}\n")
    assert message.startswith(expected), message
    assert ALICE not in message and BOB not in message and MODERATOR_TOKEN not in message


def test_describe_masks_the_token_of_a_named_entry_and_shows_its_name(tmp_path):
    text = f"moderation:\n  tokens: [{MODERATOR_TOKEN}, {{name: alice, token: {ALICE}}}]\n"
    described = describe(loaded(tmp_path, text, {"ROOMS_MODERATOR_TOKEN": BOB}))
    assert ALICE not in described and BOB not in described and MODERATOR_TOKEN not in described
    assert yaml.safe_load(described)["moderation"]["tokens"] == [MASK, {"name": "alice", "token": MASK}, MASK]


def test_the_audit_log_keeps_ten_thousand_entries_unless_told(tmp_path):
    assert loaded(tmp_path, "").backend_options().audit_keep == 10000
    assert loaded(tmp_path, "moderation:\n  audit_keep: 50\n").backend_options().audit_keep == 50
    assert config_error(tmp_path, "moderation:\n  audit_keep: 0\n").startswith("moderation.audit_keep")

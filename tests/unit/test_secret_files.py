"""Secrets read from files: the ``*_file`` keys, the ``ROOMS_*_FILE`` variables and ``moderation.tokens_file``,
as an operator gives them from a 0600 file or a systemd credential."""

from __future__ import annotations

import os

import pytest
import yaml

from rooms.config.loading import load_config
from rooms.config.masking import MASK, describe
from rooms.errors import ConfigError
from tests.support.tokens import MODERATOR_TOKEN, SECRET

INVITE_SECRET = "an-invite-secret-read-from-a-file-0123456789"
OTHER_TOKEN = "another-moderator-token-from-a-file-0123456"


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def config_error(*args, **kwargs) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(*args, **kwargs)
    return str(caught.value)


def test_the_secrets_come_from_the_files_the_config_names_without_the_trailing_line_break(tmp_path):
    jwt_path = write(tmp_path, "jwt_secret", SECRET + "\n")
    invite_path = write(tmp_path, "invite_secret", INVITE_SECRET + "\r\n")
    text = f"auth:\n  mode: token\n  jwt_secret_file: {jwt_path}\nrooms:\n  invite_secret_file: {invite_path}\n"
    config = load_config(write(tmp_path, "rooms.yaml", text), environ={})
    assert (config.auth.jwt_secret, config.rooms.invite_secret) == (SECRET, INVITE_SECRET)
    # The paths are shown by check-config; the secrets are not.
    shown = yaml.safe_load(describe(config))
    assert (shown["auth"]["jwt_secret"], shown["auth"]["jwt_secret_file"]) == (MASK, jwt_path)
    assert (shown["rooms"]["invite_secret"], shown["rooms"]["invite_secret_file"]) == (MASK, invite_path)


def test_the_file_variables_name_the_files_as_systemd_credentials_do(tmp_path):
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    environ = {
        "ROOMS_JWT_SECRET_FILE": write(credentials, "jwt_secret", SECRET),
        "ROOMS_INVITE_SECRET_FILE": write(credentials, "invite_secret", INVITE_SECRET + "\n"),
        "ROOMS_MODERATOR_TOKEN_FILE": write(credentials, "moderator_token", OTHER_TOKEN + "\n"),
    }
    config_path = write(tmp_path, "rooms.yaml", f"moderation:\n  tokens: [{MODERATOR_TOKEN}]\n")
    config = load_config(config_path, environ=environ)
    assert (config.auth.jwt_secret, config.rooms.invite_secret) == (SECRET, INVITE_SECRET)
    assert [entry.token for entry in config.moderation.tokens] == [MODERATOR_TOKEN, OTHER_TOKEN]


def test_a_variable_replaces_the_secret_the_config_file_gives_either_way(tmp_path):
    from_file = write(tmp_path, "jwt_secret", SECRET)
    in_config = write(tmp_path, "rooms.yaml", f"auth:\n  jwt_secret_file: {from_file}\n")
    replaced = load_config(in_config, environ={"ROOMS_JWT_SECRET": "v" * 40})
    assert (replaced.auth.jwt_secret, replaced.auth.jwt_secret_file) == ("v" * 40, "")
    by_value = write(tmp_path, "by-value.yaml", f"auth:\n  jwt_secret: {'v' * 40}\n")
    config = load_config(by_value, environ={"ROOMS_JWT_SECRET_FILE": from_file})
    assert (config.auth.jwt_secret, config.auth.jwt_secret_file) == (SECRET, from_file)


def test_the_tokens_file_adds_its_list_checked_like_the_config_s_own(tmp_path):
    tokens_path = write(tmp_path, "moderators.yaml", f"- {OTHER_TOKEN}\n- {'t' * 32}\n")
    text = f"moderation:\n  tokens: [{MODERATOR_TOKEN}]\n  tokens_file: {tokens_path}\n"
    environ = {"ROOMS_MODERATOR_TOKEN": "e" * 32}
    config = load_config(write(tmp_path, "rooms.yaml", text), environ=environ)
    assert [entry.token for entry in config.moderation.tokens] == [MODERATOR_TOKEN, OTHER_TOKEN, "t" * 32, "e" * 32]
    assert yaml.safe_load(describe(config))["moderation"]["tokens"] == [MASK] * 4
    short = write(tmp_path, "short.yaml", "[a-short-token]\n")
    message = config_error(write(tmp_path, "rooms.yaml", f"moderation:\n  tokens_file: {short}\n"), environ={})
    assert message.startswith("moderation.tokens: entry 1: the token is shorter") and "a-short-token" not in message


@pytest.mark.parametrize(
    ("section", "value_key", "file_key"),
    [("auth", "jwt_secret", "jwt_secret_file"), ("rooms", "invite_secret", "invite_secret_file")],
)
def test_a_secret_given_as_a_value_and_as_a_file_is_an_error_naming_both(tmp_path, section, value_key, file_key):
    path = write(tmp_path, "secret", SECRET)
    text = f"{section}:\n  {value_key}: {SECRET}\n  {file_key}: {path}\n"
    message = config_error(write(tmp_path, "rooms.yaml", text), environ={})
    assert message.startswith(f"{section}.{file_key}:") and f"{section}.{value_key}" in message
    assert SECRET not in message


def test_both_variables_of_a_secret_are_an_error_naming_both(tmp_path):
    environ = {"ROOMS_JWT_SECRET": SECRET, "ROOMS_JWT_SECRET_FILE": write(tmp_path, "jwt_secret", SECRET)}
    message = config_error(os.devnull, environ=environ)
    assert "ROOMS_JWT_SECRET " in message and "ROOMS_JWT_SECRET_FILE" in message and SECRET not in message


@pytest.mark.parametrize("content", ["", "\n", "\r\n\n"], ids=["empty", "a line break", "line breaks"])
@pytest.mark.parametrize(
    ("text", "environ", "named"),
    [
        ("auth:\n  jwt_secret_file: {path}\n", {}, "auth.jwt_secret_file"),
        ("rooms:\n  invite_secret_file: {path}\n", {}, "rooms.invite_secret_file"),
        ("moderation:\n  tokens_file: {path}\n", {}, "moderation.tokens_file"),
        ("", {"ROOMS_JWT_SECRET_FILE": "{path}"}, "auth.jwt_secret_file (from ROOMS_JWT_SECRET_FILE)"),
        ("", {"ROOMS_INVITE_SECRET_FILE": "{path}"}, "rooms.invite_secret_file (from ROOMS_INVITE_SECRET_FILE)"),
        ("", {"ROOMS_MODERATOR_TOKEN_FILE": "{path}"}, "moderation.tokens (from ROOMS_MODERATOR_TOKEN_FILE)"),
    ],
)
def test_an_empty_or_missing_file_is_an_error_naming_the_key_and_the_path(tmp_path, content, text, environ, named):
    empty = write(tmp_path, "empty", content)
    missing = str(tmp_path / "missing")
    for path, reason in ((empty, "is empty"), (missing, "cannot read")):
        config_path = write(tmp_path, "rooms.yaml", text.format(path=path))
        message = config_error(config_path, environ={k: v.format(path=path) for k, v in environ.items()})
        assert message.startswith(f"{named}: ") and path in message and reason in message, message


def test_a_path_that_cannot_be_read_is_an_error_with_the_reason(tmp_path):
    # A directory: unreadable as a file even to root, who reads a file of any mode.
    path = str(tmp_path)
    message = config_error(write(tmp_path, "rooms.yaml", f"auth:\n  jwt_secret_file: {path}\n"), environ={})
    assert message == f"auth.jwt_secret_file: cannot read {path}: Is a directory"


@pytest.mark.parametrize(
    "content",
    [f"{OTHER_TOKEN}: [unclosed\n", f"token: {OTHER_TOKEN}\n", "[]\n", f"{OTHER_TOKEN}\n"],
    ids=["bad YAML", "a mapping", "an empty list", "a bare token"],
)
def test_a_tokens_file_that_is_no_list_of_tokens_is_an_error_that_never_shows_a_token(tmp_path, content):
    path = write(tmp_path, "moderators.yaml", content)
    message = config_error(write(tmp_path, "rooms.yaml", f"moderation:\n  tokens_file: {path}\n"), environ={})
    assert message.startswith("moderation.tokens_file: ") and path in message
    assert OTHER_TOKEN not in message


def test_a_secret_file_s_content_is_checked_like_the_value(tmp_path):
    path = write(tmp_path, "jwt_secret", "too-short\n")
    message = config_error(write(tmp_path, "rooms.yaml", f"auth:\n  jwt_secret_file: {path}\n"), environ={})
    assert message.startswith("auth.jwt_secret:") and "too-short" not in message


def test_an_override_replaces_the_other_form_of_a_secret_and_a_file_it_names_is_read(tmp_path):
    path = write(tmp_path, "jwt_secret", SECRET + "\n")
    in_config = write(tmp_path, "rooms.yaml", f"auth:\n  jwt_secret: {'v' * 40}\n")
    config = load_config(in_config, environ={}, overrides={"auth.jwt_secret_file": path})
    assert (config.auth.jwt_secret, config.auth.jwt_secret_file) == (SECRET, path)
    tokens_path = write(tmp_path, "moderators.yaml", f"[{OTHER_TOKEN}]\n")
    config = load_config(os.devnull, environ={}, overrides={"moderation.tokens_file": tokens_path})
    assert [entry.token for entry in config.moderation.tokens] == [OTHER_TOKEN]

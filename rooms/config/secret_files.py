"""Secrets read from files: ``auth.jwt_secret_file``, ``rooms.invite_secret_file``, ``moderation.tokens_file``
and the ``ROOMS_*_FILE`` variables, so that a secret can live in a 0600 file or a systemd credential
(``$CREDENTIALS_DIRECTORY``) instead of in the config or the environment.

An error names the key (or variable) and the path, never what the file holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from rooms.errors import ConfigError

# Each secret that may be given as a value or as the path of a file holding it: value key -> file key.
SECRET_FILE_KEYS = {
    "auth.jwt_secret": "auth.jwt_secret_file",
    "rooms.invite_secret": "rooms.invite_secret_file",
}
TOKENS_FILE_KEY = "moderation.tokens_file"
# Variables that set a key: a variable replaces the file's value and the file's path alike, but one
# variable of each pair only.
SECRET_VARIABLES = {
    "auth.jwt_secret": ("ROOMS_JWT_SECRET", "ROOMS_JWT_SECRET_FILE"),
    "rooms.invite_secret": ("ROOMS_INVITE_SECRET", "ROOMS_INVITE_SECRET_FILE"),
}
MODERATOR_TOKEN_FILE_VARIABLE = "ROOMS_MODERATOR_TOKEN_FILE"


def apply_secret_variables(merged: dict[str, dict[str, Any]], environ: Mapping[str, str]) -> dict[str, str]:
    """Set each secret from its variable (``ROOMS_JWT_SECRET``) or its file's variable
    (``ROOMS_JWT_SECRET_FILE``), replacing whichever of the two keys the file set. Returns the variable each
    file key came from, for error lines."""
    sources: dict[str, str] = {}
    for value_key, (value_variable, file_variable) in SECRET_VARIABLES.items():
        file_key = SECRET_FILE_KEYS[value_key]
        given_file = bool(environ.get(file_variable))  # an empty path names no file
        if value_variable in environ and given_file:
            raise ConfigError(f"{file_key}: set {value_variable} or {file_variable}, not both")
        if value_variable not in environ and not given_file:
            continue
        section, value_name = value_key.split(".")
        file_name = file_key.split(".")[1]
        values = merged.setdefault(section, {})
        values.pop(value_name, None)
        values.pop(file_name, None)
        if given_file:
            values[file_name] = environ[file_variable]
            sources[file_key] = file_variable
        else:
            values[value_name] = environ[value_variable]
    return sources


def forget_other_form(merged: dict[str, dict[str, Any]], key: str) -> None:
    """``key`` was just set over the file: a secret's value replaces its file there, and its file its value."""
    for value_key, file_key in SECRET_FILE_KEYS.items():
        if key in (value_key, file_key):
            other = file_key if key == value_key else value_key
            section, name = other.split(".")
            merged.get(section, {}).pop(name, None)


def check_not_both(merged: dict[str, dict[str, Any]]) -> None:
    """A secret set both as a value and as a file in the same place: which one was meant is unknown."""
    for value_key, file_key in SECRET_FILE_KEYS.items():
        section, value_name = value_key.split(".")
        values = merged.get(section, {})
        if values.get(value_name) and values.get(file_key.split(".")[1]):
            raise ConfigError(f"{file_key}: set {value_key} or {file_key}, not both")


def read_secret_files(merged: dict[str, dict[str, Any]], sources: Mapping[str, str]) -> None:
    """Put each secret file's content in place of its path's value key."""
    for value_key, file_key in SECRET_FILE_KEYS.items():
        section, value_name = value_key.split(".")
        path = merged.get(section, {}).get(file_key.split(".")[1])
        if isinstance(path, str) and path:
            merged[section][value_name] = read_secret(_named(file_key, sources), path)


def read_tokens_file(merged: dict[str, dict[str, Any]]) -> None:
    """Append ``moderation.tokens_file``'s entries to the list, to be checked with it as its own are."""
    moderation = merged.setdefault("moderation", {})
    path = moderation.get("tokens_file")
    if isinstance(path, str) and path:
        moderation["tokens"] = [*(moderation.get("tokens") or []), *_read_token_list(path)]


def read_moderator_token_file(merged: dict[str, dict[str, Any]], environ: Mapping[str, str]) -> None:
    """Append the one token of the file ``ROOMS_MODERATOR_TOKEN_FILE`` names, as ``ROOMS_MODERATOR_TOKEN``'s."""
    path = environ.get(MODERATOR_TOKEN_FILE_VARIABLE)
    if path:
        moderation = merged.setdefault("moderation", {})
        token = read_secret(f"moderation.tokens (from {MODERATOR_TOKEN_FILE_VARIABLE})", path)
        moderation["tokens"] = [*(moderation.get("tokens") or []), token]


def read_secret(named: str, path: str) -> str:
    """A file's text without its trailing line break; ``named`` (the key) leads any error."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigError(f"{named}: cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{named}: {path} is not UTF-8 text") from None
    secret = text.rstrip("\r\n")
    if not secret:
        raise ConfigError(f"{named}: {path} is empty")
    return secret


def _read_token_list(path: str) -> list[Any]:
    text = read_secret(TOKENS_FILE_KEY, path)
    try:
        tokens = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # The parser's message quotes the text it stopped at, which may be a token: only where it stopped.
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"{TOKENS_FILE_KEY}: {path} is not valid YAML{where}") from None
    if not isinstance(tokens, list) or not tokens:
        raise ConfigError(f"{TOKENS_FILE_KEY}: {path} must hold a list of tokens, like moderation.tokens")
    return tokens


def _named(file_key: str, sources: Mapping[str, str]) -> str:
    return f"{file_key} (from {sources[file_key]})" if file_key in sources else file_key

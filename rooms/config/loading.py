"""Reading the config: one YAML file, then environment variables, then command-line overrides."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

import yaml

from backends import check_options
from backends.errors import BackendConfigError
from rooms.config.checks import MODERATOR_TOKEN_VARIABLE, check_auth, check_value
from rooms.config.model import (
    AuthConfig,
    BackendConfig,
    Config,
    HistoryConfig,
    LimitsConfig,
    ModerationConfig,
    RoomsConfig,
    ServerConfig,
)
from rooms.config.secret_files import (
    apply_secret_variables,
    check_not_both,
    forget_other_form,
    read_moderator_token_file,
    read_secret_files,
    read_tokens_file,
)
from rooms.errors import ConfigError

DEFAULT_FILE = "config.yaml"
_SECTION_CLASSES = {
    "server": ServerConfig,
    "backend": BackendConfig,
    "history": HistoryConfig,
    "limits": LimitsConfig,
    "auth": AuthConfig,
    "rooms": RoomsConfig,
    "moderation": ModerationConfig,
}
# Variables that set a key. The secrets' variables (and their ``_FILE`` twins) are in secret_files.py; the
# moderator token is added to the file's list instead.
_ENV_KEYS = {
    "ROOMS_BACKEND_URL": "backend.url",
    "ROOMS_HOST": "server.host",
    "ROOMS_PORT": "server.port",
}


def load_config(
    path: str | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Read the file (``path``, else ``ROOMS_CONFIG``, else ``config.yaml`` if it exists), then apply
    ``ROOMS_BACKEND_URL``/``ROOMS_HOST``/``ROOMS_PORT``/``ROOMS_JWT_SECRET``/``ROOMS_INVITE_SECRET`` (or their
    ``_FILE`` twins; ``ROOMS_MODERATOR_TOKEN`` and ``ROOMS_MODERATOR_TOKEN_FILE`` add to ``moderation.tokens``),
    then ``overrides`` (dotted key -> value); last, every secret file is read in place of its path."""
    environ = os.environ if environ is None else environ
    path = config_file(path, environ)
    raw: Any = {}
    if path is not None:
        raw = _read_yaml(path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config: the file must hold a mapping of sections, got {type(raw).__name__}")

    merged: dict[str, dict[str, Any]] = {}
    for section, values in raw.items():
        if section not in _SECTION_CLASSES:
            raise ConfigError(f"{section}: unknown key (known: {', '.join(_SECTION_CLASSES)})")
        if values is None:
            values = {}
        if not isinstance(values, dict):
            raise ConfigError(f"{section}: must be a mapping of keys, got {values!r}")
        merged[section] = dict(values)
    # The file must be valid on its own: a flag or variable that overrides a wrong key does not mend the file.
    _build_config(merged)
    check_not_both(merged)

    for variable, key in _ENV_KEYS.items():
        if variable in environ:
            section, name = key.split(".")
            merged.setdefault(section, {})[name] = _from_environment(variable, key, environ[variable])
    file_sources = apply_secret_variables(merged, environ)
    for key, value in (overrides or {}).items():
        if value is not None:
            section, name = key.split(".")
            merged.setdefault(section, {})[name] = value
            forget_other_form(merged, key)
            file_sources.pop(key, None)  # no longer from a variable
    # Last, so that the files named by every layer are read, and the tokens keep the order the docs give.
    read_secret_files(merged, file_sources)
    read_tokens_file(merged)
    if environ.get(MODERATOR_TOKEN_VARIABLE):
        moderation = merged.setdefault("moderation", {})
        moderation["tokens"] = [*(moderation.get("tokens") or []), environ[MODERATOR_TOKEN_VARIABLE]]
    read_moderator_token_file(merged, environ)
    config = _build_config(merged)
    # Only of the whole: the file may leave to a variable what only both together make right.
    check_auth(config)
    return config


def config_file(path: str | None, environ: Mapping[str, str]) -> str | None:
    """The file ``load_config`` reads: ``path``, else ``ROOMS_CONFIG``, else ``config.yaml`` in the
    working directory if there is one; None: none, so the defaults (and the environment) make the config."""
    path = path or environ.get("ROOMS_CONFIG")
    if path is None and os.path.exists(DEFAULT_FILE):
        return DEFAULT_FILE
    return path


def _build_config(merged: dict[str, dict[str, Any]]) -> Config:
    sections = {name: _build_section(name, cls, merged.get(name, {})) for name, cls in _SECTION_CLASSES.items()}
    config = Config(**sections)
    try:
        check_options(config.backend_options())  # the scheme, and the chosen backend's own options
    except BackendConfigError as exc:
        raise ConfigError(str(exc)) from None
    return config


def _read_yaml(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except OSError as exc:
        raise ConfigError(f"config: cannot read {path}: {exc.strerror or exc}") from None
    except yaml.MarkedYAMLError as exc:
        # The mark of the problem (where the parser stopped), else of what it was reading: counted from 0.
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "not valid YAML"
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"config: {path}{where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config: {path} is not valid YAML: {str(exc).splitlines()[0]}") from None


def _from_environment(variable: str, key: str, value: str) -> Any:
    if key != "server.port":
        return value
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{key}: {variable}={value!r} is not a whole number") from None


def _build_section(section: str, cls: type, values: dict[str, Any]) -> Any:
    known = {f.name: f for f in fields(cls)}
    checked: dict[str, Any] = {}
    for name, value in values.items():
        key = f"{section}.{name}"
        if name not in known:
            raise ConfigError(f"{key}: unknown key (known in {section}: {', '.join(known)})")
        checked[name] = check_value(key, known[name].type, value)
    return cls(**checked)

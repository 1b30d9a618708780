"""Configuration: one YAML file, environment overrides, command-line overrides, validated at start.

Every error names the dotted key and the bad value, because the operator reading it has only that
one line (and exit status 2) to go on.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from backends import check_options
from backends.address_blocks import AddressBlocks
from backends.base import AddressQuota, BackendOptions
from backends.errors import BackendConfigError
from rooms.access.addresses import CLIENT_ADDRESS_HEADERS, FORWARDED_FOR
from rooms.access.room_patterns import PatternError, check_pattern
from rooms.access.tokens import load_public_key
from rooms.errors import ConfigError

LOOPBACK = ("127.0.0.1/8", "::1")
# An address sends over all its sockets and POSTs what several sockets would: the defaults of docs/protocol.md.
ADDRESS_RATE_FACTOR = 4
ADDRESS_BURST_FACTOR = 3


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    allowed_origins: list[str] = field(default_factory=list)
    allowed_hosts: list[str] = field(default_factory=list)
    trusted_proxies: list[str] = field(default_factory=lambda: list(LOOPBACK))
    client_address_header: str = FORWARDED_FOR
    metrics_allowed: list[str] = field(default_factory=lambda: list(LOOPBACK))
    ping_interval: float = 20
    shutdown_grace: float = 5
    log_level: str = "info"
    event_loop: str = "asyncio"


@dataclass(frozen=True)
class BackendConfig:
    url: str = "sqlite:///rooms.db"
    connect_timeout: float = 10
    # Read and checked by the SQL backend only (backends/sql/options.py), which gets it in ``settings``.
    sqlite_synchronous: str = "full"


@dataclass(frozen=True)
class HistoryConfig:
    page_size: int = 50
    retain_per_room: int = 10000
    expire_after_days: float = 0


@dataclass(frozen=True)
class LimitsConfig:
    max_handle_chars: int = 32
    max_message_chars: int = 4000
    max_frame_bytes: int = 65536
    messages_per_second: float = 5
    burst: int = 20
    send_buffer_bytes: int = 1048576
    connections_per_address: int = 50
    # None: derived from the per-connection limit (the defaults of docs/protocol.md), see the properties below.
    address_messages_per_second: float | None = None
    address_burst: int | None = None
    new_rooms_per_hour: int = 60
    ipv6_56_factor: int = 4
    ipv6_48_factor: int = 16

    @property
    def address_rate(self) -> float:
        if self.address_messages_per_second is None:
            return self.messages_per_second * ADDRESS_RATE_FACTOR
        return self.address_messages_per_second

    @property
    def address_bucket(self) -> int:
        return self.burst * ADDRESS_BURST_FACTOR if self.address_burst is None else self.address_burst

    @property
    def address_blocks(self) -> AddressBlocks:
        return AddressBlocks(self.ipv6_56_factor, self.ipv6_48_factor)


@dataclass(frozen=True)
class AuthConfig:
    mode: str = "open"
    jwt_secret: str = ""
    jwt_public_key: str = ""
    jwt_audience: str = ""


@dataclass(frozen=True)
class RoomsConfig:
    private: list[str] = field(default_factory=list)
    invite_secret: str = ""


@dataclass(frozen=True)
class ModerationConfig:
    tokens: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    backend: BackendConfig = field(default_factory=BackendConfig)
    history: HistoryConfig = field(default_factory=HistoryConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    rooms: RoomsConfig = field(default_factory=RoomsConfig)
    moderation: ModerationConfig = field(default_factory=ModerationConfig)

    def backend_options(self) -> BackendOptions:
        """What the chosen backend is built from; it reads the options it knows itself."""
        return BackendOptions(
            url=self.backend.url,
            retain_per_room=self.history.retain_per_room,
            settings={"sqlite_synchronous": self.backend.sqlite_synchronous},
            quota=AddressQuota(
                self.limits.new_rooms_per_hour,
                self.limits.address_rate,
                self.limits.address_bucket,
                self.limits.address_blocks,
            ),
        )


_SECTION_CLASSES = {
    "server": ServerConfig,
    "backend": BackendConfig,
    "history": HistoryConfig,
    "limits": LimitsConfig,
    "auth": AuthConfig,
    "rooms": RoomsConfig,
    "moderation": ModerationConfig,
}
_CHOICES = {
    "auth.mode": ("open", "token"),
    "server.log_level": ("debug", "info", "warning", "error"),
    "server.event_loop": ("asyncio", "uvloop"),
    "server.client_address_header": CLIENT_ADDRESS_HEADERS,
}
# The smallest value each number may take; anything lower cannot work.
_MINIMUM = {
    "server.port": 0,
    "server.ping_interval": 0,
    "server.shutdown_grace": 0,
    "backend.connect_timeout": 0,
    "history.page_size": 1,
    "history.retain_per_room": 0,
    "limits.max_handle_chars": 1,
    "limits.max_message_chars": 1,
    "limits.max_frame_bytes": 128,
    "limits.messages_per_second": 0.001,
    "limits.burst": 1,
    "limits.send_buffer_bytes": 1024,
    "limits.connections_per_address": 1,
    "limits.address_messages_per_second": 0.001,
    "limits.address_burst": 1,
    "limits.new_rooms_per_hour": 1,
    "limits.ipv6_56_factor": 1,
    "limits.ipv6_48_factor": 1,
    "history.expire_after_days": 0,
}
# Lists of addresses or networks (``10.0.0.0/8``), checked at start so a typo is not a silent hole.
_NETWORK_LISTS = ("server.trusted_proxies", "server.metrics_allowed")
_MAXIMUM = {"server.port": 65535, "history.page_size": 200}
# Strings whose empty value means "not set" (the default), rather than a mistake.
_MAY_BE_EMPTY = ("auth.jwt_secret", "auth.jwt_public_key", "auth.jwt_audience", "rooms.invite_secret")
# Lists of rooms by label or ``prefix*``, checked at start: a typo would leave a room public.
_PATTERN_LISTS = ("rooms.private",)
# A moderator token is a password anyone may try on the API: long enough that trying cannot find one.
MIN_MODERATOR_TOKEN_CHARS = 32
# RFC 7518 (3.2): an HS256 key at least as long as the hash.
MIN_JWT_SECRET_BYTES = 32
# Variables that set a key (the secrets, which are better kept out of a file); the moderator token
# is added to the file's list instead.
_ENV_KEYS = {
    "ROOMS_BACKEND_URL": "backend.url",
    "ROOMS_HOST": "server.host",
    "ROOMS_PORT": "server.port",
    "ROOMS_JWT_SECRET": "auth.jwt_secret",
    "ROOMS_INVITE_SECRET": "rooms.invite_secret",
}
MODERATOR_TOKEN_VARIABLE = "ROOMS_MODERATOR_TOKEN"


def load_config(
    path: str | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Read the file (``path``, else ``ROOMS_CONFIG``, else ``config.yaml`` if it exists), then apply
    ``ROOMS_BACKEND_URL``/``ROOMS_HOST``/``ROOMS_PORT``/``ROOMS_JWT_SECRET``/``ROOMS_INVITE_SECRET``
    (``ROOMS_MODERATOR_TOKEN`` adds to ``moderation.tokens``), then ``overrides`` (dotted key -> value)."""
    environ = os.environ if environ is None else environ
    path = path or environ.get("ROOMS_CONFIG")
    raw: Any = {}
    if path is not None or os.path.exists("config.yaml"):
        raw = _read_yaml(path or "config.yaml")
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

    for variable, key in _ENV_KEYS.items():
        if variable in environ:
            section, name = key.split(".")
            merged.setdefault(section, {})[name] = _from_environment(variable, key, environ[variable])
    if environ.get(MODERATOR_TOKEN_VARIABLE):
        moderation = merged.setdefault("moderation", {})
        moderation["tokens"] = [*(moderation.get("tokens") or []), environ[MODERATOR_TOKEN_VARIABLE]]
    for key, value in (overrides or {}).items():
        if value is not None:
            section, name = key.split(".")
            merged.setdefault(section, {})[name] = value
    config = _build_config(merged)
    # Only of the whole: the file may leave to a variable what only both together make right.
    _check_auth(config)
    return config


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
        checked[name] = _check_value(key, known[name].type, value)
    return cls(**checked)


def _check_value(key: str, declared: Any, value: Any) -> Any:
    # An error names the key and shows the value, but never a secret's.
    shown = MASK if _is_secret(key) else repr(value)
    type_name = declared if isinstance(declared, str) else getattr(declared, "__name__", str(declared))
    if type_name.endswith(" | None"):
        if value is None:
            return None
        type_name = type_name.removesuffix(" | None")
    if type_name == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: {shown} is not a whole number")
    elif type_name == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: {shown} is not a number")
        value = float(value)
    elif type_name == "str":
        if value is None and key in _MAY_BE_EMPTY:  # ``jwt_secret:`` with nothing after it
            value = ""
        if not isinstance(value, str) or not (value or key in _MAY_BE_EMPTY):
            raise ConfigError(f"{key}: {shown} is not a non-empty string")
        if key in _CHOICES and value.lower() not in _CHOICES[key]:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(_CHOICES[key])}")
        if key in _CHOICES:
            value = value.lower()
    elif type_name == "list[str]":
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ConfigError(f"{key}: {shown} is not a list of strings")
        if key in _NETWORK_LISTS:
            for item in value:
                try:
                    ipaddress.ip_network(item, strict=False)
                except ValueError:
                    raise ConfigError(f"{key}: {item!r} is not an IP address or network") from None
        if key in _PATTERN_LISTS:
            for item in value:
                try:
                    check_pattern(item)
                except PatternError as exc:
                    raise ConfigError(f"{key}: {exc}") from None
        if key == "moderation.tokens":
            for number, token in enumerate(value, 1):
                _check_moderator_token(number, token)
    if key in _MINIMUM and value < _MINIMUM[key]:
        raise ConfigError(f"{key}: {value!r} is below the minimum {_MINIMUM[key]}")
    if key in _MAXIMUM and value > _MAXIMUM[key]:
        raise ConfigError(f"{key}: {value!r} is above the maximum {_MAXIMUM[key]}")
    return value


def _check_moderator_token(number: int, token: str) -> None:
    # Which one by its place in the list: the token itself is never shown.
    if len(token) < MIN_MODERATOR_TOKEN_CHARS:
        raise ConfigError(
            f"moderation.tokens: token {number} is shorter than {MIN_MODERATOR_TOKEN_CHARS} characters "
            f"(the list, then {MODERATOR_TOKEN_VARIABLE}); make one with: openssl rand -base64 32"
        )
    if any(char.isspace() or not char.isprintable() for char in token):
        raise ConfigError(
            f"moderation.tokens: token {number} holds white space or a control character, "
            "which an Authorization header cannot carry"
        )


def _check_auth(config: Config) -> None:
    """``auth`` as a whole: a key for token mode, not two keys, a secret long enough, a public key that loads."""
    auth = config.auth
    if auth.jwt_secret and auth.jwt_public_key:
        raise ConfigError(
            "auth.jwt_public_key: set auth.jwt_secret (HS256) or auth.jwt_public_key (RS256, ES256, EdDSA), not both"
        )
    if auth.mode == "token" and not (auth.jwt_secret or auth.jwt_public_key):
        raise ConfigError(
            "auth.mode: token needs auth.jwt_secret (or $ROOMS_JWT_SECRET) or auth.jwt_public_key to check tokens with"
        )
    if auth.jwt_secret and len(auth.jwt_secret.encode("utf-8")) < MIN_JWT_SECRET_BYTES:
        raise ConfigError(f"auth.jwt_secret: shorter than {MIN_JWT_SECRET_BYTES} bytes, too short for HS256")
    if auth.jwt_public_key:
        load_public_key(auth.jwt_public_key)  # raises ConfigError naming the key


SECRET_WORDS = ("secret", "token", "password")
MASK = "********"


def _is_secret(key: str) -> bool:
    return any(word in key.rpartition(".")[2] for word in SECRET_WORDS)


def describe(config: Config) -> str:
    """The resolved config as YAML, with secrets masked: what ``--check-config`` prints."""
    sections = asdict(config)
    for values in sections.values():
        for key, value in values.items():
            if not _is_secret(key):
                continue
            if isinstance(value, str) and value:
                values[key] = MASK
            elif isinstance(value, list):
                values[key] = [MASK for _ in value]
    sections["backend"]["url"] = _mask_url(config.backend.url)
    return yaml.safe_dump(sections, sort_keys=False, default_flow_style=False)


def _mask_url(url: str) -> str:
    """A URL's password replaced by the mask (``redis://:pw@host`` and ``postgresql://u:pw@host`` alike)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))

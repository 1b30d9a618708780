"""Each config value checked where it is read: type, range, choice, and the few keys checked as a whole.

Every error names the dotted key and the bad value (never a secret's), because the operator reading it has
only that one line (and exit status 2) to go on.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from rooms.access.addresses import CLIENT_ADDRESS_HEADERS
from rooms.access.room_patterns import PatternError, check_pattern
from rooms.access.tokens import load_public_key
from rooms.config.masking import MASK, is_secret
from rooms.config.model import FINGERPRINT_PREFIX, Config, ModeratorToken
from rooms.errors import ConfigError
from rooms.service import allocator

_CHOICES = {
    "auth.mode": ("open", "token"),
    "server.log_level": ("debug", "info", "warning", "error"),
    "server.log_format": ("text", "json"),
    "server.event_loop": ("asyncio", "uvloop"),
    "server.allocator": allocator.CHOICES,
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
    "limits.searches_per_minute": 1,
    "limits.ipv6_56_factor": 1,
    "limits.ipv6_48_factor": 1,
    "history.expire_after_days": 0,
    "moderation.audit_keep": 1,
}
# Lists of addresses or networks (``10.0.0.0/8``), checked at start so a typo is not a silent hole.
_NETWORK_LISTS = ("server.trusted_proxies", "server.metrics_allowed")
_MAXIMUM = {"server.port": 65535, "history.page_size": 200, "moderation.audit_keep": 1_000_000}
# Strings whose empty value means "not set" (the default), rather than a mistake.
_MAY_BE_EMPTY = (
    "auth.jwt_secret",
    "auth.jwt_secret_file",
    "auth.jwt_public_key",
    "auth.jwt_audience",
    "auth.jwt_private_key",
    "rooms.invite_secret",
    "rooms.invite_secret_file",
    "moderation.tokens_file",
    "server.public_url",
)
# Lists of rooms by label or ``prefix*``, checked at start: a typo would leave a room public.
_PATTERN_LISTS = ("rooms.private",)
# A moderator token is a password anyone may try on the API: long enough that trying cannot find one.
MIN_MODERATOR_TOKEN_CHARS = 32
# RFC 7518 (3.2): an HS256 key at least as long as the hash.
MIN_JWT_SECRET_BYTES = 32
MODERATOR_TOKEN_VARIABLE = "ROOMS_MODERATOR_TOKEN"
_TOKEN_ENTRY_KEYS = frozenset({"name", "token"})
MAX_MODERATOR_NAME_CHARS = 64


def check_value(key: str, declared: Any, value: Any) -> Any:
    # An error names the key and shows the value, but never a secret's.
    shown = MASK if is_secret(key) else repr(value)
    type_name = declared if isinstance(declared, str) else getattr(declared, "__name__", str(declared))
    if key == "moderation.tokens":
        return moderator_tokens(value)
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
        if key == "server.public_url" and value:
            value = _check_public_url(value)
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
    if key in _MINIMUM and value < _MINIMUM[key]:
        raise ConfigError(f"{key}: {value!r} is below the minimum {_MINIMUM[key]}")
    if key in _MAXIMUM and value > _MAXIMUM[key]:
        raise ConfigError(f"{key}: {value!r} is above the maximum {_MAXIMUM[key]}")
    return value


def moderator_tokens(value: Any) -> list[ModeratorToken]:
    """``moderation.tokens``: each entry a token, or ``{name: ..., token: ...}``; names unique. An error
    names the entry by its place in the list (the file's, then ``ROOMS_MODERATOR_TOKEN``), never its token."""
    if not isinstance(value, list):
        raise ConfigError(f"moderation.tokens: {MASK} is not a list of tokens (or {{name: ..., token: ...}} entries)")
    tokens: list[ModeratorToken] = []
    named: dict[str, int] = {}
    for number, entry in enumerate(value, 1):
        token = _moderator_token(number, entry)
        if token.name is not None:
            if token.name in named:
                raise ConfigError(
                    f"moderation.tokens: entry {number}: the name {token.name!r} is entry {named[token.name]}'s too"
                )
            named[token.name] = number
        tokens.append(token)
    return tokens


def _moderator_token(number: int, entry: Any) -> ModeratorToken:
    where = f"moderation.tokens: entry {number}"
    if isinstance(entry, list):
        raise ConfigError(f"{where}: is neither a token nor {{name: ..., token: ...}}")
    if not isinstance(entry, dict):
        _check_moderator_token(where, entry)
        return ModeratorToken(entry)
    unknown = sorted(str(key) for key in set(entry) - _TOKEN_ENTRY_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (an entry is a token, or {{name: ..., token: ...}})")
    if "token" not in entry:
        raise ConfigError(f"{where}: has a name but no token")
    name = entry.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_MODERATOR_NAME_CHARS or not name.isprintable():
        raise ConfigError(f"{where}: 'name' must be a string of 1 to {MAX_MODERATOR_NAME_CHARS} printable characters")
    if name != name.strip() or name.startswith(FINGERPRINT_PREFIX):
        raise ConfigError(f"{where}: the name {name!r} has white space at an end or starts {FINGERPRINT_PREFIX!r}")
    _check_moderator_token(where, entry["token"])
    return ModeratorToken(entry["token"], name)


def _check_public_url(url: str) -> str:
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError:
        parts = parts._replace(scheme="")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(
            f"server.public_url: {url!r} is not an http:// or https:// address such as https://chat.example.org"
        )
    return url.rstrip("/")


def _check_moderator_token(where: str, token: Any) -> None:
    # Which one by its place in the list: the token itself is never shown.
    if not isinstance(token, str):
        raise ConfigError(f"{where}: the token must be a string (quote it in YAML)")
    if len(token) < MIN_MODERATOR_TOKEN_CHARS:
        raise ConfigError(
            f"{where}: the token is shorter than {MIN_MODERATOR_TOKEN_CHARS} characters (the list, then "
            f"moderation.tokens_file, {MODERATOR_TOKEN_VARIABLE} and its _FILE); make one with: openssl rand -base64 32"
        )
    if any(char.isspace() or not char.isprintable() for char in token):
        raise ConfigError(
            f"{where}: the token holds white space or a control character, which an Authorization header cannot carry"
        )


def check_auth(config: Config) -> None:
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

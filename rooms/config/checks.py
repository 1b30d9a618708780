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
from rooms.config.model import Config
from rooms.errors import ConfigError

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
_MAY_BE_EMPTY = (
    "auth.jwt_secret",
    "auth.jwt_public_key",
    "auth.jwt_audience",
    "auth.jwt_private_key",
    "rooms.invite_secret",
    "server.public_url",
)
# Lists of rooms by label or ``prefix*``, checked at start: a typo would leave a room public.
_PATTERN_LISTS = ("rooms.private",)
# A moderator token is a password anyone may try on the API: long enough that trying cannot find one.
MIN_MODERATOR_TOKEN_CHARS = 32
# RFC 7518 (3.2): an HS256 key at least as long as the hash.
MIN_JWT_SECRET_BYTES = 32
MODERATOR_TOKEN_VARIABLE = "ROOMS_MODERATOR_TOKEN"


def check_value(key: str, declared: Any, value: Any) -> Any:
    # An error names the key and shows the value, but never a secret's.
    shown = MASK if is_secret(key) else repr(value)
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
        if key == "moderation.tokens":
            for number, token in enumerate(value, 1):
                _check_moderator_token(number, token)
    if key in _MINIMUM and value < _MINIMUM[key]:
        raise ConfigError(f"{key}: {value!r} is below the minimum {_MINIMUM[key]}")
    if key in _MAXIMUM and value > _MAXIMUM[key]:
        raise ConfigError(f"{key}: {value!r} is above the maximum {_MAXIMUM[key]}")
    return value


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

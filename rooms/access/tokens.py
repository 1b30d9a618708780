"""Signed identities: the JSON Web Tokens an operator's own site issues, checked with PyJWT.

A token is trusted only as far as its key goes: an HS256 secret shared with the site, or the public
half of the site's key pair. Only the algorithms that fit that key are accepted, so a token cannot
choose how it is checked (``alg: none``, or an HMAC "signed" with the public key as its secret).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from rooms.access.room_patterns import PatternError, RoomPatterns
from rooms.errors import ConfigError
from rooms.protocol import ProtocolError, check_handle

# Clocks of the site and of this server may differ a little; a token is not refused for that.
LEEWAY_SECONDS = 30
MAX_USER_CHARS = 256
MIN_RSA_BITS = 2048
HMAC_ALGORITHMS = ("HS256",)
RSA_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
# Each curve has its one algorithm (RFC 7518, 3.4).
EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
EDDSA_ALGORITHMS = ("EdDSA",)

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey


class InvalidToken(Exception):
    """A token that does not say who anyone is: expired, signed with another key, malformed; the
    message says which, for the developer of the site that issued it."""


@dataclass(frozen=True)
class TokenKey:
    """What checks a token's signature, and the algorithms that fit it."""

    key: str | PublicKey
    algorithms: tuple[str, ...]


def secret_key(secret: str) -> TokenKey:
    return TokenKey(secret, HMAC_ALGORITHMS)


def load_public_key(path: str) -> TokenKey:
    """The PEM public key at ``path`` (``auth.jwt_public_key``), or ``ConfigError`` saying why not."""
    setting = "auth.jwt_public_key"
    pem = read_key_file(setting, path)
    try:
        key = load_pem_public_key(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConfigError(f"{setting}: {path} is not a PEM public key (-----BEGIN PUBLIC KEY-----)") from None
    return key_for_tokens(setting, path, key)


def read_key_file(setting: str, path: str) -> bytes:
    """The bytes of the key file ``path`` that ``setting`` names, or ``ConfigError`` saying why not."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot read {path}: {exc.strerror or exc}") from None


def key_for_tokens(setting: str, path: str, key: PublicKeyTypes) -> TokenKey:
    """``key`` with the algorithms that fit it, or ``ConfigError`` for a key tokens are not signed with
    (another kind, an RSA key too short, an EC key on a curve JWS does not name)."""
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise ConfigError(f"{setting}: an RSA key of {key.key_size} bits; use {MIN_RSA_BITS} or more")
        return TokenKey(key, RSA_ALGORITHMS)
    if isinstance(key, ec.EllipticCurvePublicKey):
        algorithm = EC_ALGORITHMS.get(key.curve.name)
        if algorithm is None:
            raise ConfigError(f"{setting}: an EC key on {key.curve.name}; use P-256 (ES256), P-384 or P-521")
        return TokenKey(key, (algorithm,))
    if isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        return TokenKey(key, EDDSA_ALGORITHMS)
    raise ConfigError(f"{setting}: {path} holds a key tokens are not signed with; use RSA, EC or Ed25519")


@dataclass(frozen=True)
class Claims:
    """What a valid token says: who (``sub``), the handle shown (``name``), the rooms it may enter
    (``rooms``; None: every public room) and whether it moderates them (``mod``)."""

    user: str
    name: str
    rooms: RoomPatterns | None
    moderator: bool


class TokenVerifier:
    def __init__(self, key: TokenKey, audience: str | None, max_handle_chars: int) -> None:
        self._key = key
        self._audience = audience or None
        self._max_handle_chars = max_handle_chars

    def verify(self, token: str) -> Claims:
        """The token's claims, or ``InvalidToken``."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key.key,
                algorithms=list(self._key.algorithms),
                audience=self._audience,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "sub"], "verify_aud": self._audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the token has expired") from None
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(f"the token is not valid: {exc}") from None
        user = self._user(claims["sub"])
        return Claims(
            user=user,
            name=self._name(claims["name"], "name") if "name" in claims else self._name(user, "sub"),
            rooms=_rooms(claims.get("rooms")),
            moderator=_moderator(claims.get("mod", False)),
        )

    def _name(self, name: Any, claim: str) -> str:
        """The handle the token's messages carry: its ``name``, else its ``sub``; a handle like any."""
        if not isinstance(name, str):
            raise InvalidToken(f"claim '{claim}' must be a string")
        try:
            return check_handle(name, self._max_handle_chars)
        except ProtocolError as exc:
            shown_as = "" if claim == "name" else " (shown as the handle, as the token has no 'name')"
            raise InvalidToken(f"claim '{claim}'{shown_as} is not a handle: {exc.reason}") from None

    @staticmethod
    def _user(user: Any) -> str:
        if not isinstance(user, str) or not 1 <= len(user) <= MAX_USER_CHARS or not user.isprintable():
            raise InvalidToken(f"claim 'sub' must be a string of 1 to {MAX_USER_CHARS} printable characters")
        return user


def _rooms(rooms: Any) -> RoomPatterns | None:
    if rooms is None:
        return None
    if not isinstance(rooms, list) or not all(isinstance(room, str) for room in rooms):
        raise InvalidToken("claim 'rooms' must be a list of labels or 'prefix*' patterns")
    try:
        return RoomPatterns(rooms)
    except PatternError as exc:
        raise InvalidToken(f"claim 'rooms': {exc}") from None


def _moderator(mod: Any) -> bool:
    if not isinstance(mod, bool):
        raise InvalidToken("claim 'mod' must be true or false")
    return mod

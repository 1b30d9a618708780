"""Tokens and invites made by the operator (``rooms token``, ``rooms invite``), signed with the keys of
the config, so that a server with the same config accepts them.

A token is signed with ``auth.jwt_secret`` (HS256), or with ``auth.jwt_private_key``, the private half of
``auth.jwt_public_key``; the server itself never reads the private key. Each token made is checked with
the server's own ``TokenVerifier`` before it is handed out: what this prints, rooms accepts.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_private_key

from rooms.access.invites import Invite, InviteSigner, invite_key
from rooms.access.tokens import (
    PublicKey,
    TokenKey,
    TokenVerifier,
    key_for_tokens,
    load_public_key,
    read_key_file,
    secret_key,
)
from rooms.config.model import Config
from rooms.errors import ConfigError

PRIVATE_KEY = "auth.jwt_private_key"
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey


def mint_token(
    config: Config,
    sub: str,
    seconds: int,
    name: str | None = None,
    rooms: Sequence[str] | None = None,
    mod: bool = False,
) -> str:
    """A token for ``sub`` valid for ``seconds``, or ``ConfigError`` (no key to sign with, a key that
    does not fit) or ``tokens.InvalidToken`` (a claim rooms would refuse, the message says which)."""
    auth = config.auth
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "iat": now, "exp": now + seconds}
    if name is not None:
        claims["name"] = name
    if rooms is not None:
        claims["rooms"] = list(rooms)
    if mod:
        claims["mod"] = True
    if auth.jwt_audience:
        claims["aud"] = auth.jwt_audience
    if auth.jwt_secret:
        token = jwt.encode(claims, auth.jwt_secret, algorithm="HS256")
        checking = secret_key(auth.jwt_secret)
    else:
        signing, checking = _key_pair(config)
        token = jwt.encode(claims, signing, algorithm=checking.algorithms[0])
    TokenVerifier(checking, auth.jwt_audience, config.limits.max_handle_chars).verify(token)
    return token


def _key_pair(config: Config) -> tuple[PrivateKey, TokenKey]:
    auth = config.auth
    if not auth.jwt_private_key:
        raise ConfigError(
            f"{PRIVATE_KEY}: not set, nor auth.jwt_secret: a token is signed with the secret (HS256) or with "
            "the private half of auth.jwt_public_key"
        )
    if not auth.jwt_public_key:
        raise ConfigError(f"{PRIVATE_KEY}: auth.jwt_public_key must name its public half, which the server checks with")
    private = load_private_key(auth.jwt_private_key)
    checking = load_public_key(auth.jwt_public_key)
    assert not isinstance(checking.key, str)  # a public key file gives a key, never a secret
    if _spki(private.public_key()) != _spki(checking.key):
        raise ConfigError(f"{PRIVATE_KEY}: {auth.jwt_private_key} is not the private half of auth.jwt_public_key")
    return private, checking


def load_private_key(path: str) -> PrivateKey:
    """The PEM private key at ``path`` (unencrypted), or ``ConfigError`` saying why not."""
    pem = read_key_file(PRIVATE_KEY, path)
    try:
        key = load_pem_private_key(pem, password=None)
    except TypeError:
        raise ConfigError(f"{PRIVATE_KEY}: {path} is encrypted; give an unencrypted PEM private key") from None
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError(f"{PRIVATE_KEY}: {path} is not a PEM private key") from None
    key_for_tokens(PRIVATE_KEY, path, key.public_key())  # the same kinds, sizes and curves as a public key
    assert isinstance(key, PrivateKey)  # as key_for_tokens found
    return key


def _spki(key: PublicKey) -> bytes:
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def make_invite(config: Config, room: str, seconds: int) -> Invite:
    """An invite to ``room`` that every server with this config accepts, or ``ConfigError`` if the config
    gives no key they share."""
    if not (config.rooms.invite_secret or config.moderation.tokens):
        raise ConfigError(
            "rooms.invite_secret: not set, and there are no moderation.tokens: each server process signs invites "
            "with a random key of its own, which no command can know; set rooms.invite_secret"
        )
    return InviteSigner(
        invite_key(config.rooms.invite_secret, [entry.token for entry in config.moderation.tokens])
    ).make(room, seconds)

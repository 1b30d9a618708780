"""Tokens for tests, signed as an operator's site would sign them, and keys made here with cryptography."""

from __future__ import annotations

import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

SECRET = "a-test-secret-of-more-than-32-bytes-for-hs256"
MODERATOR_TOKEN = "moderator-token-for-the-tests-0123456789"
ALGORITHMS = ("HS256", "RS256", "ES256", "EdDSA")


def claims(sub: str = "u-1", seconds: float = 300, **extra: Any) -> dict[str, Any]:
    """A token's claims: ``sub``, ``exp`` ``seconds`` from now (negative: already expired), and ``extra``."""
    return {"sub": sub, "exp": int(time.time() + seconds), **extra}


def hs256(payload: dict[str, Any], secret: str = SECRET) -> str:
    return jwt.encode(payload, secret, algorithm="HS256")


def private_key(algorithm: str) -> Any:
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(algorithm)


def public_pem(key: Any) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def pem_file(directory: Any, content: bytes) -> str:
    """``content`` written to ``key.pem`` in ``directory``; its path."""
    path = directory / "key.pem"
    path.write_bytes(content)
    return str(path)


class Signer:
    """A site's signing side for one algorithm; ``auth`` is the config section that checks its tokens."""

    def __init__(self, algorithm: str, directory: Any) -> None:
        self.algorithm = algorithm
        if algorithm == "HS256":
            self.key: Any = SECRET
            self.auth: dict[str, Any] = {"jwt_secret": SECRET}
        else:
            self.key = private_key(algorithm)
            path = directory / f"{algorithm}.pem"
            path.write_bytes(public_pem(self.key))
            self.auth = {"jwt_public_key": str(path)}

    def sign(self, payload: dict[str, Any]) -> str:
        return jwt.encode(payload, self.key, algorithm=self.algorithm)


def unsigned(payload: dict[str, Any]) -> str:
    """A token with ``alg: none``: no signature at all."""
    return jwt.encode(payload, None, algorithm="none")

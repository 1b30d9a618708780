"""The private key ``rooms token`` signs with (``auth.jwt_private_key``): every key it cannot sign a token
rooms accepts with is a config error naming the setting and why, as for the public half."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519

from rooms.access.minting import load_private_key
from rooms.errors import ConfigError
from tests.support.tokens import pem_file, private_key

pytestmark = pytest.mark.unit

PLAIN = serialization.NoEncryption()


def private_pem(key: Any, encryption: Any = PLAIN) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA"])
def test_a_key_tokens_are_signed_with_is_read(tmp_path, algorithm):
    key = private_key(algorithm)
    loaded = load_private_key(pem_file(tmp_path, private_pem(key)))
    assert private_pem(loaded) == private_pem(key)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"not a key", "is not a PEM private key"),
        (
            private_pem(ed25519.Ed25519PrivateKey.generate(), serialization.BestAvailableEncryption(b"pw")),
            "is encrypted",
        ),
        (private_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)), "an RSA key of 1024 bits"),
        (private_pem(ec.generate_private_key(ec.SECP256K1())), "an EC key on secp256k1"),
        (private_pem(x25519.X25519PrivateKey.generate()), "holds a key tokens are not signed with"),
    ],
    ids=["not-pem", "encrypted", "rsa-1024", "secp256k1", "x25519"],
)
def test_a_key_tokens_cannot_be_signed_with_is_a_config_error(tmp_path, content, reason):
    with pytest.raises(ConfigError, match=reason) as refused:
        load_private_key(pem_file(tmp_path, content))
    assert str(refused.value).startswith("auth.jwt_private_key: ")


def test_a_missing_key_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"^auth\.jwt_private_key: cannot read .*missing\.pem"):
        load_private_key(str(tmp_path / "missing.pem"))

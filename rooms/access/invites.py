"""Invites: links that let anyone holding them into one private room until they expire.

An invite is signed, not stored: ``base64url(expiry || HMAC-SHA256(key, label, expiry)[:16])``, 32
characters. So every process that shares the key accepts it with no shared state, and nothing grows
with the invites made; the price is that one cannot be withdrawn before it expires, except by changing
the key (which withdraws them all).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import math
import re
import secrets
import struct
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import NamedTuple

log = logging.getLogger(__name__)

DEFAULT_SECONDS = 7 * 24 * 3600
MAX_SECONDS = 90 * 24 * 3600
# 128 bits of HMAC-SHA256: far beyond guessing, and half the length of the whole tag.
_MAC_BYTES = 16
_EXPIRY = struct.Struct(">Q")
_CONTEXT = b"rooms invite v1\x00"
_KEY_FROM_TOKENS = b"rooms invite key from moderator tokens v1"
# 24 bytes are 32 base64 characters without padding, and no bits left over.
_CODE = re.compile(r"[A-Za-z0-9_-]{32}")


class Invite(NamedTuple):
    code: str
    expires: datetime


def invite_key(invite_secret: str, moderator_tokens: Sequence[str]) -> bytes:
    """The key invites are signed with: ``rooms.invite_secret``; else one derived from the moderator
    tokens (every process with the same config has the same, and changing them withdraws every invite);
    else a random one of this process alone, which is said in the log."""
    if invite_secret:
        return invite_secret.encode("utf-8")
    if moderator_tokens:
        # Sorted: the same key whether a token came from the file or from the environment.
        material = b"\x00".join(token.encode("utf-8") for token in sorted(moderator_tokens))
        return hmac.new(_KEY_FROM_TOKENS, material, hashlib.sha256).digest()
    log.warning(
        "rooms.invite_secret is not set and there are no moderation.tokens: invites are signed with a key "
        "of this process alone, and stop working when it restarts and on any other process"
    )
    return secrets.token_bytes(32)


class InviteSigner:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def make(self, room: str, seconds: int, now: float | None = None) -> Invite:
        """An invite to ``room`` valid for ``seconds`` from now."""
        # Rounded up: an invite is good for at least the time asked.
        expiry = math.ceil((now if now is not None else time.time()) + seconds)
        packed = _EXPIRY.pack(expiry)
        code = base64.urlsafe_b64encode(packed + self._mac(room, packed)).rstrip(b"=").decode("ascii")
        return Invite(code, datetime.fromtimestamp(expiry, UTC))

    def admits(self, code: str, room: str, now: float | None = None) -> bool:
        """Whether ``code`` is an invite to ``room`` signed with this key that has not expired."""
        if _CODE.fullmatch(code) is None:  # so the decoding below has one answer per code
            return False
        raw = base64.urlsafe_b64decode(code)
        packed, mac = raw[: _EXPIRY.size], raw[_EXPIRY.size :]
        if not hmac.compare_digest(mac, self._mac(room, packed)):
            return False
        (expiry,) = _EXPIRY.unpack(packed)
        return bool(expiry > (now if now is not None else time.time()))

    def _mac(self, room: str, packed_expiry: bytes) -> bytes:
        message = _CONTEXT + packed_expiry + room.encode("utf-8")
        return hmac.new(self._key, message, hashlib.sha256).digest()[:_MAC_BYTES]

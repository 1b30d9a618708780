"""Who a request is and which rooms it may enter: the one place every way in (page, API, socket) asks.

A request brings at most a credential — a token signed by the operator's site (``auth.*``) or one of
the config's moderator tokens — and an invite to one room. In ``open`` mode a request without a
credential is anyone; in ``token`` mode it is refused. A credential that is sent is always checked,
in either mode: a client that sends one expects it to count, and a bad one is refused rather than
silently ignored. Private rooms (``rooms.private``) are entered only with a credential that covers
them or an invite to them; to anyone else they are not there.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import replace

from rooms.access.identity import ANONYMOUS, Identity, config_moderator
from rooms.access.invites import Invite, InviteSigner, invite_key
from rooms.access.room_patterns import RoomPatterns
from rooms.access.tokens import InvalidToken, TokenVerifier, load_public_key, secret_key
from rooms.config.model import Config, ModeratorToken
from rooms.errors import NotAdmitted, Unauthenticated


class AccessPolicy:
    def __init__(
        self,
        *,
        token_mode: bool,
        verifier: TokenVerifier | None,
        moderator_tokens: Sequence[ModeratorToken],
        private: RoomPatterns,
        invites: InviteSigner,
    ) -> None:
        self.token_mode = token_mode
        self._verifier = verifier
        self._moderator_tokens = tuple(
            (entry.token.encode("utf-8"), config_moderator(entry.actor)) for entry in moderator_tokens
        )
        self._private = private
        self._invites = invites

    @classmethod
    def from_config(cls, config: Config) -> AccessPolicy:
        auth = config.auth
        verifier = None
        if auth.jwt_secret or auth.jwt_public_key:
            key = secret_key(auth.jwt_secret) if auth.jwt_secret else load_public_key(auth.jwt_public_key)
            verifier = TokenVerifier(key, auth.jwt_audience, config.limits.max_handle_chars)
        tokens = config.moderation.tokens
        return cls(
            token_mode=auth.mode == "token",
            verifier=verifier,
            moderator_tokens=tokens,
            private=RoomPatterns(config.rooms.private),
            invites=InviteSigner(invite_key(config.rooms.invite_secret, [entry.token for entry in tokens])),
        )

    def identify(self, credential: str | None) -> Identity:
        """Who ``credential`` says the request is, or ``Unauthenticated`` with the reason."""
        if not credential:
            if self.token_mode:
                raise Unauthenticated("sign-in needed: this server takes a token (?token= or Authorization: Bearer)")
            return ANONYMOUS
        moderator = self._moderator(credential)
        if moderator is not None:
            return moderator
        if self._verifier is None:
            raise Unauthenticated("the token is not valid: not a moderator token, and this server takes no other")
        try:
            claims = self._verifier.verify(credential)
        except InvalidToken as exc:
            raise Unauthenticated(str(exc)) from None
        return Identity(claims.user, claims.name, claims.moderator, claims.rooms)

    def _moderator(self, credential: str) -> Identity | None:
        """The moderator whose config token ``credential`` is (the first entry that has it), if any."""
        given = credential.encode("utf-8")
        # Every token is compared, in constant time: how long the answer takes tells nothing of them.
        found = None
        for token, moderator in self._moderator_tokens:
            if hmac.compare_digest(given, token) and found is None:
                found = moderator
        return found

    def is_private(self, room: str) -> bool:
        return self._private.matches(room)

    def may_enter(self, identity: Identity, room: str, invite: str | None = None) -> bool:
        if identity.covers(room, self.is_private(room)):
            return True
        if not invite:
            return False
        return self._invites.admits(invite, room)

    def admit(self, room: str, credential: str | None, invite: str | None = None) -> Identity:
        """Who the request is in ``room`` (``moderator`` only if it moderates this room), if it may enter
        it; else ``Unauthenticated`` (no credential where one is needed, or a bad one) or ``NotAdmitted``
        (a room it may not enter)."""
        identity = self.identify(credential)
        if not self.may_enter(identity, room, invite):
            raise NotAdmitted(room)
        if identity.moderator and not self.moderates(identity, room):
            # In by an invite, not by its token: a moderator of other rooms is a guest here.
            return replace(identity, moderator=False)
        return identity

    def moderates(self, identity: Identity, room: str) -> bool:
        """Whether ``identity`` is a moderator in ``room``: a moderator token, or a token with
        ``mod: true`` that covers the room."""
        return identity.moderator and identity.covers(room, self.is_private(room))

    def moderates_every_room(self, identity: Identity) -> bool:
        """Whether ``identity`` moderates every room, private ones included (what a ban of every room
        takes): a moderator token, or a token with ``mod: true`` and ``rooms: ["*"]``."""
        return identity.moderator and identity.rooms is not None and identity.rooms.covers_every_room()

    def invite(self, room: str, seconds: int) -> Invite:
        return self._invites.make(room, seconds)

"""Changes to messages by their authors (docs/protocol.md, "Messages that change"): an edit, a deletion,
a reaction, each checked here the same whether it comes from a socket or from the API.

Who may change a message is its author: the ``author`` it was stored with is the hash of its author key
(``rooms.protocol.key_author``) or its token's ``sub`` (``user_author``), and a change presents either.
Bans and locks hold for changes as for messages: against the handle the message went out under and the
one the change comes from, and the address it comes from.
"""

from __future__ import annotations

from collections.abc import Callable

from backends.base import Backend, StoredMessage, utc_timestamp
from backends.changes import MessageChange
from backends.errors import InvalidMessageId, MessageNotFound, NotAuthor, TooManyReactions
from rooms.access.identity import Identity
from rooms.errors import Forbidden, RateLimited
from rooms.protocol import ErrorCode, ProtocolError, user_author
from rooms.room.rates import Sender

# Why ``identity`` may not post in a room under a handle from an address (``RoomHub.refusal``).
Refusal = Callable[[Identity, str, str, str], str | None]
NOT_AUTHOR = "only the message's author may {what} it"


def no_such_message(message_id: str) -> ProtocolError:
    return ProtocolError(ErrorCode.NOT_FOUND, f"this room holds no message {message_id}")


class MessageChanges:
    """The hub's part that edits, deletes and reacts for a message's author (or, reacting, anyone)."""

    def __init__(self, backend: Backend, refusal: Refusal) -> None:
        self._backend = backend
        self._refusal = refusal

    async def edit(
        self, room: str, message_id: str, text: str, key: str | None, identity: Identity, address: str
    ) -> StoredMessage:
        """Give the message its author's new text; the message as it now stands. ``ProtocolError``
        (``not_found``) for a message the room does not hold, ``Forbidden`` for anyone else."""
        stored = await self._changeable(room, message_id, identity, address, "edit")
        authors = _authors(identity, key)
        try:
            change = await self._backend.edit_message(room, message_id, text, utc_timestamp(), authors)
        except MessageNotFound:
            raise no_such_message(message_id) from None
        except NotAuthor:
            raise Forbidden(NOT_AUTHOR.format(what="edit")) from None
        return stored._replace(message=text, edited=change.edited)

    async def delete(self, room: str, message_id: str, key: str | None, identity: Identity, address: str) -> None:
        """Delete the message as its author; as a moderator's deletion from there on."""
        await self._changeable(room, message_id, identity, address, "delete")
        try:
            deleted = await self._backend.delete_message(room, message_id, _authors(identity, key))
        except NotAuthor:
            raise Forbidden(NOT_AUTHOR.format(what="delete")) from None
        if not deleted:
            raise no_such_message(message_id)

    async def react(
        self, room: str, message_id: str, emoji: str, on: bool, reactor: str | None, identity: Identity, sender: Sender
    ) -> MessageChange | None:
        """Add or take back a reaction of ``reactor`` (the socket's announced handle; a token's ``sub``
        goes first); rate-limited as a message is. None when it changes nothing."""
        if not sender.take():
            raise RateLimited("too many messages and reactions; this one was not sent, slow down")
        who = user_author(identity.user) if identity.user is not None else None
        if who is None and reactor is not None:
            who = "handle:" + reactor
        if who is None:
            raise ProtocolError(ErrorCode.INVALID_MESSAGE, "a reaction needs a handle: announce it with hello first")
        handle = identity.name or reactor or ""
        self._check_refusal(identity, room, (handle,), sender.address)
        _check_id(self._backend, message_id)
        try:
            return await self._backend.react(room, message_id, who, emoji, on)
        except MessageNotFound:
            raise no_such_message(message_id) from None
        except TooManyReactions as exc:
            raise ProtocolError(ErrorCode.INVALID_MESSAGE, str(exc)) from None

    async def _changeable(
        self, room: str, message_id: str, identity: Identity, address: str, what: str
    ) -> StoredMessage:
        _check_id(self._backend, message_id)
        stored = await self._backend.message(room, message_id)
        if stored is None:
            raise no_such_message(message_id)
        self._check_refusal(identity, room, (stored.handle, identity.name or stored.handle), address)
        if stored.author is None:
            raise Forbidden(NOT_AUTHOR.format(what=what))
        return stored

    def _check_refusal(self, identity: Identity, room: str, handles: tuple[str, ...], address: str) -> None:
        for handle in dict.fromkeys(handles):
            refusal = self._refusal(identity, room, handle, address)
            if refusal is not None:
                raise Forbidden(f"{refusal}; nothing was changed")


def _check_id(backend: Backend, message_id: str) -> None:
    try:
        backend.id_key(message_id)
    except InvalidMessageId:
        raise no_such_message(message_id) from None


def _authors(identity: Identity, key: str | None) -> frozenset[str]:
    """The authors a change presents: its token's ``sub``, its author key's hash, or both."""
    authors = {key} if key is not None else set()
    if identity.user is not None:
        authors.add(user_author(identity.user))
    return frozenset(authors)

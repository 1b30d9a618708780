"""The room's log on Redis: edits, deletions (a moderator's or its author's) and reactions.

A change is one script (``lua/log.lua`` and the change's own): it finds the message in the room's stream
(so one pruned or deleted is refused), checks its author (``a``, stored with the message), updates the
message as it now stands (``RedisKeys.current``), and takes the room's next position: an id past the last
the room's stream ever issued, which the stream is then set to (``XSETID``), so that the next message's id
lies past it. The change is kept under that id in the room's changes stream (``RedisKeys.changes``) and
published on the room's channel, in the room's one order with its messages. Every key is the room's, in
its cluster slot.

Reads show messages as they now stand, and a replay with an origin reads the changes after its ``since``,
passing by those that went with their message: pruned, or made before the message's deletion
(``backends.redis.history``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, cast

from redis.exceptions import RedisClusterException, RedisError

from backends.changes import MAX_REACTION_KINDS, ChangeKind, MessageChange
from backends.errors import BackendUnavailable, MessageNotFound, NotAuthor, TooManyReactions
from backends.redis.entries import MAX_ID, ZERO_ID, format_stream_id, parse_stream_id
from backends.redis.scripts import DELETE, EDIT, REACT, LuaScript

if TYPE_CHECKING:
    from backends.redis.deployment import Deployment
    from backends.redis.subscriber import Subscriber

# How long a change's answer waits for this process to deliver it (as a store's does, see ``stores``).
DELIVERY_WAIT_SECONDS = 2.0
# What the change scripts answer first when they changed nothing (2: changed, then its position).
NOT_FOUND, NOT_AUTHOR, TOO_MANY, UNCHANGED = 0, 1, 3, 4


def message_key(message_id: str) -> str | None:
    """The id as the stream writes it; None for "0" and the largest id, which name no message."""
    key = parse_stream_id(message_id)
    return None if key in (ZERO_ID, MAX_ID) else format_stream_id(key)


class RedisLog:
    """``Backend.edit_message``, ``react`` and ``delete_message`` on Redis."""

    def __init__(self, deployment: Deployment, subscriber: Subscriber) -> None:
        self._deployment = deployment
        self._redis = deployment.commands
        self._keys = deployment.keys
        self._subscriber = subscriber

    async def edit(self, room: str, message_id: str, text: str, edited: str, authors: frozenset[str]) -> MessageChange:
        entry_id = message_key(message_id)
        if entry_id is None:
            raise MessageNotFound(f"this room holds no message {message_id}")
        reply = await self._change(room, EDIT, [entry_id, self._keys.channel(room), text, edited, *sorted(authors)])
        self._refuse(reply, message_id, "edit")
        change = MessageChange(room, entry_id, str(reply[1]), ChangeKind.EDIT, message=text, edited=edited)
        await self._delivered(change)
        return change

    async def react(self, room: str, message_id: str, reactor: str, emoji: str, on: bool) -> MessageChange | None:
        entry_id = message_key(message_id)
        if entry_id is None:
            raise MessageNotFound(f"this room holds no message {message_id}")
        args = [entry_id, self._keys.channel(room), reactor, emoji, "1" if on else "", MAX_REACTION_KINDS]
        reply = await self._change(room, REACT, args)
        if int(reply[0]) == TOO_MANY:
            raise TooManyReactions(f"a message has at most {MAX_REACTION_KINDS} different reactions")
        if int(reply[0]) == UNCHANGED:
            return None
        self._refuse(reply, message_id, "react to")
        counts = tuple((str(symbol), int(count)) for symbol, count in json.loads(reply[2]) or ())
        change = MessageChange(room, entry_id, str(reply[1]), ChangeKind.REACTIONS, reactions=counts)
        await self._delivered(change)
        return change

    async def delete(self, room: str, message_id: str, authors: frozenset[str] | None) -> bool:
        entry_id = message_key(message_id)
        if entry_id is None:
            return False
        who = ["moderator"] if authors is None else ["author", *sorted(authors)]
        reply = await self._change(room, DELETE, [entry_id, self._keys.channel(room), *who], self._keys.deleted(room))
        if int(reply[0]) == NOT_FOUND:
            return False
        self._refuse(reply, message_id, "delete")
        await self._delivered(MessageChange(room, entry_id, str(reply[1]), ChangeKind.DELETE))
        pipe = self._redis.pipeline(transaction=False)
        pipe.zincrby(self._keys.busiest, -1, room)
        pipe.zremrangebyscore(self._keys.busiest, "-inf", 0)  # a room with no message left is not listed
        try:
            await pipe.execute()
        except (RedisError, RedisClusterException, OSError) as exc:
            raise BackendUnavailable(f"message deleted, its room's count not lowered: {exc}") from None
        return True

    async def _change(self, room: str, script: LuaScript, args: list[str | int], *more_keys: str) -> list[Any]:
        keys = [self._keys.stream(room), self._keys.changes(room), self._keys.current(room), *more_keys]
        try:
            [reply] = await self._deployment.run_scripts([(script, keys, args)], wait_for_replicas=True)
        except (RedisError, RedisClusterException, OSError) as exc:
            raise BackendUnavailable(f"message not changed: {exc}") from None
        if isinstance(reply, Exception):
            raise BackendUnavailable(f"message not changed: {reply}")
        return cast(list[Any], reply)

    @staticmethod
    def _refuse(reply: list[Any], message_id: str, what: str) -> None:
        status = int(reply[0])
        if status == NOT_FOUND:
            raise MessageNotFound(f"this room holds no message {message_id}")
        if status == NOT_AUTHOR:
            raise NotAuthor(f"only its author may {what} this message")

    async def _delivered(self, change: MessageChange) -> None:
        """Answer once this process has delivered the change, as a store is answered: whoever made it hears
        of it through the room's broadcast before any later reply."""
        await self._subscriber.wait_delivered(change.room, parse_stream_id(change.at), DELIVERY_WAIT_SECONDS)

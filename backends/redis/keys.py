"""How rooms lays out its data in Redis: the names of its keys and channels.

Every key and channel starts with one prefix, so several deployments (or test runs) can share a Redis
server; a room's keys carry its label as a hash tag (see ``RedisKeys``).
"""

from __future__ import annotations


class RedisKeys:
    """Names of everything rooms keeps in Redis, under one prefix.

    Every key of a room carries the room's label as a hash tag (``<prefix>{<label>}:stream``), so that
    all of a room's keys, and its channel, lie in one slot of a Redis Cluster and one script may touch
    them together. Labels hold neither ``:`` nor braces, so ``<prefix>{<room>}:cid:<client id>`` is
    unambiguous whatever the client id holds. Keys shared by the whole deployment have no room tag: the
    busiest and active rooms share the tag ``{rooms}`` (read together when rooms expire), the bans and
    their id counter the tag ``{moderation}``, as do the audit log and its id counter.
    """

    def __init__(self, prefix: str, db: int = 0) -> None:
        self.prefix = prefix
        self._db = db
        # Pub/sub: a notice after every change of bans or locks (see ``backends.redis.moderation``).
        self.moderation_channel = f"{prefix}db{db}:moderation"
        self.busiest = f"{prefix}{{rooms}}:busiest"  # sorted set: room -> messages ever stored
        self.counters = f"{prefix}counters"  # hash: totals of every process, for /metrics
        self.epoch = f"{prefix}epoch"  # a token that vanishes when Redis loses its data
        self.active = f"{prefix}{{rooms}}:active"  # sorted set: room -> its newest message's time (Unix seconds)
        self.bans = f"{prefix}{{moderation}}:bans"  # hash: ban id -> "<created us> <expires us or -> <json>"
        self.ban_ids = f"{prefix}{{moderation}}:ban-ids"  # the last ban id issued
        self.audit = f"{prefix}{{moderation}}:audit"  # stream: the audit log, entry ids "<id>-0"
        self.audit_ids = f"{prefix}{{moderation}}:audit-ids"  # the last audit entry id issued
        self.locked = f"{prefix}locked"  # set: the labels of the locked rooms
        self.layout = f"{prefix}layout"  # the layout's version, once keys of an earlier one were renamed

    def _room(self, room: str) -> str:
        return f"{self.prefix}{{{room}}}:"

    def stream(self, room: str) -> str:
        return f"{self._room(room)}stream"

    def channel(self, room: str) -> str:
        """Pub/sub channels are global to the server, not per database number, so the channel's name
        carries the database number: deployments kept apart by database number stay apart on pub/sub."""
        return f"{self._room(room)}db{self._db}:room"

    def room_of_channel(self, channel: str) -> str | None:
        head, _, rest = channel.partition("{")
        room, _, tail = rest.partition("}")
        if head != self.prefix or tail != f":db{self._db}:room":
            return None
        return room

    def deleted(self, room: str) -> str:
        """Sorted set: the ids of the room's messages a moderator deleted, each scored by its deletion's
        number in the room (1, 2, ...), so that its size is how many were deleted."""
        return f"{self._room(room)}deleted"

    def pruned(self, room: str) -> str:
        """The id of the newest message retention trimmed from the room's stream, set by the store script
        as it trims: a client that saw an older one missed messages, one that saw it (or later) did not."""
        return f"{self._room(room)}pruned"

    def changes(self, room: str) -> str:
        """Stream: the changes to the room's messages (edits, deletions, reactions), each entry's id its
        position in the room's order (see ``lua/log.lua``)."""
        return f"{self._room(room)}changes"

    def current(self, room: str) -> str:
        """Hash: the room's changed messages as they now stand (text, edited, reactions; and who reacted
        with what), by message id (see ``lua/log.lua``)."""
        return f"{self._room(room)}current"

    def room_epoch(self, room: str) -> str:
        """A token set when the room's stream is made: another token means the stream was lost (or
        removed) and made again since, and what was delivered from the earlier one is not history."""
        return f"{self._room(room)}epoch"

    def presence(self, room: str) -> str:
        """Hash: each process's share of the room's presence (see ``backends.redis.presence``)."""
        return f"{self._room(room)}presence"

    def client_id(self, room: str, client_id: str) -> str:
        return f"{self._room(room)}cid:{client_id}"

    def attempt(self, room: str, token: str) -> str:
        return f"{self._room(room)}attempt:{token}"

    def sent_by(self, block: str, widest: str) -> str:
        """Hash: the token bucket of the messages of a block of addresses (an IPv4 address, an IPv6
        /64, /56 or /48), shared by every process. Tagged with the ``widest`` block the sender counts
        in, so that all of a sender's buckets are in one cluster slot, for one script."""
        return f"{self._quota(block, widest)}messages"

    def rooms_made_by(self, block: str, widest: str) -> str:
        """Hash: the token bucket of the rooms a block of addresses may still create."""
        return f"{self._quota(block, widest)}rooms"

    def _quota(self, block: str, widest: str) -> str:
        return f"{self.prefix}quota:{{{widest}}}:" + ("" if block == widest else f"{block}:")

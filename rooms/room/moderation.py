"""Moderation in the room layer: the bans and room locks this process enforces, and the sockets a ban
of their address closes.

The backend stores bans and locks for every process and tells each of them after any change
(``DeliveryTarget.moderation_changed``, also after a reconnect that may have missed some). This module
keeps a copy in the process, read at start and again after every notice, so that whether a message may
be posted costs a few dictionary lookups and no round trip. A change made through this process is
applied here as soon as the store has it, before its notice comes back; the other processes apply it
when the notice reaches them (Redis pub/sub: milliseconds). A ban's expiry is checked each time the ban
is consulted, so it stops applying on time with or without a notice.

What a ban matches:

* a **handle**: the handle a message goes out under (a token's name, when it has one), and every handle
  that looks the same (``rooms.lookalikes``: case folded, so ``Spammer`` and ``spammer`` are one, and
  ``ｓｐａｍｍｅｒ`` or a Cyrillic ``ѕраммег`` too: a ban should not end where a shift key or a keyboard
  layout does);
* an **address**: every client in its range (``rooms.access.addresses.RangeIndex``), each client taken as
  per-address limits count it (``rooms.access.addresses.limit_key``): IPv4 as is, IPv6 by its /64.

A ban is of one room or of every room. Moderators (of the room in question) are never refused, by bans
or by locks: a ban of their address (a shared NAT) must not lock out whoever lifts it.

Every action a moderator takes here (delete, ban, lift, lock, unlock, invite) is kept in the backend's
audit log once it is done, with who took it, and is one line of the ``rooms.audit`` log, whose record
carries the entry's fields as attributes (``rooms.room.audit``).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Protocol

from backends.audit import AuditAction
from backends.base import Backend, Ban, ban_timestamp
from backends.errors import BackendUnavailable, InvalidMessageId
from rooms.access.addresses import RangeIndex
from rooms.lookalikes import lookalike_key
from rooms.protocol import CloseCode
from rooms.room.audit import record

log = logging.getLogger(__name__)

# How long to wait before reading bans and locks again when the store could not answer.
RETRY_SECONDS = 2.0
LOCKED = "this room is locked: only moderators may post"
# A close frame's reason is at most 123 bytes: a fixed one, never the moderator's reason.
BANNED_ADDRESS = "this address is banned from the room by a moderator"


class Closable(Protocol):
    """What a ban needs of a socket: that it can be closed."""

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Send a close frame."""


def handle_key(handle: str) -> str:
    """What handle bans compare: the same for handles that look the same."""
    return lookalike_key(handle)


def _now() -> str:
    return ban_timestamp(datetime.now(UTC))


def _in_force(bans: tuple[Ban, ...] | None, room: str, now: str | None) -> Ban | None:
    """The first of ``bans`` that applies in ``room`` and has not expired."""
    for ban in bans or ():
        if ban.room is not None and ban.room != room:
            continue
        if ban.expires is not None and ban.expires <= (now or _now()):
            continue
        return ban
    return None


def refusal_text(ban: Ban) -> str:
    where = "in every room" if ban.room is None else "in this room"
    return f"banned by a moderator {where}" + (f": {ban.reason}" if ban.reason else "")


class RoomModeration:
    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._bans: tuple[Ban, ...] = ()
        self._by_handle: dict[str, tuple[Ban, ...]] = {}
        self._by_address: RangeIndex[Ban] = RangeIndex(())
        self._locked: frozenset[str] = frozenset()
        # The open sockets of non-moderators, by address key, and the room each is in: whom a ban closes.
        self._sockets: dict[str, dict[Closable, str]] = {}
        self._stale = False
        self._refresh: asyncio.Task[None] | None = None
        # Counts the changes applied here directly: a read that began before one of them is out of date.
        self._changes = 0
        self._closed = False

    # -- what is in force -------------------------------------------------------------------------

    def refusal(self, room: str, handle: str, address: str) -> str | None:
        """Why a non-moderator may not post in ``room`` under ``handle`` from ``address`` (a key as
        ``limit_key`` makes it), or None if it may."""
        if room in self._locked:
            return LOCKED
        if not self._bans:
            return None
        now = None
        by_handle = self._by_handle.get(handle_key(handle)) if self._by_handle else None
        by_address = self._by_address.of(address) if self._by_address else None
        for bans in (by_handle, by_address):
            if bans:
                now = now or _now()
                ban = _in_force(bans, room, now)
                if ban is not None:
                    return refusal_text(ban)
        return None

    def address_ban(self, room: str, address: str) -> Ban | None:
        """The ban in force of ``address`` (a ``limit_key``) in ``room``, if any: its sockets are refused."""
        return _in_force(self._by_address.of(address), room, None) if self._by_address else None

    def is_locked(self, room: str) -> bool:
        return room in self._locked

    # -- sockets ----------------------------------------------------------------------------------

    def watch(self, socket: Closable, room: str, address: str) -> bool:
        """Keep a non-moderator's open socket, to close it once its address is banned from ``room``;
        False (nothing kept) when it is banned already: the caller closes it."""
        if self.address_ban(room, address) is not None:
            return False
        self._sockets.setdefault(address, {})[socket] = room
        return True

    def unwatch(self, socket: Closable, address: str) -> None:
        """Safe to repeat."""
        sockets = self._sockets.get(address)
        if sockets is not None and sockets.pop(socket, None) is not None and not sockets:
            del self._sockets[address]

    def _close_banned(self) -> None:
        if not self._sockets or not self._by_address:
            return
        now = _now()
        for address, sockets in list(self._sockets.items()):
            bans = self._by_address.of(address)
            if not bans:
                continue
            for socket, room in list(sockets.items()):
                ban = _in_force(bans, room, now)
                if ban is not None:
                    self.unwatch(socket, address)
                    socket.close(CloseCode.POLICY, BANNED_ADDRESS)

    # -- reading what the store holds -------------------------------------------------------------

    async def load(self) -> None:
        """Read bans and locks (at start, before serving). If the store cannot answer, they are read in
        the background until it does, as after a missed notice."""
        try:
            bans, locked = await self._read()
        except BackendUnavailable as exc:
            log.warning("bans and room locks not read at start, trying again: %s", exc)
            self.changed()
            return
        self._apply(bans, locked)

    def changed(self) -> None:
        """Bans or locks changed somewhere (or a notice may have been missed): read them again. Notices
        that come while a read is on its way are answered by one more read, not one each."""
        if self._closed:
            return
        self._stale = True
        if self._refresh is None:
            self._refresh = asyncio.ensure_future(self._read_until_fresh())

    async def _read(self) -> tuple[list[Ban], frozenset[str]]:
        return await self._backend.bans(), await self._backend.locked_rooms()

    async def _read_until_fresh(self) -> None:
        failing = False
        try:
            while self._stale:
                self._stale = False
                changes = self._changes
                try:
                    bans, locked = await self._read()
                except BackendUnavailable as exc:
                    # Until the store answers, the copy here is what holds: warned once per outage.
                    (log.debug if failing else log.warning)("bans and room locks not read, trying again: %s", exc)
                    failing = True
                    self._stale = True
                    await asyncio.sleep(RETRY_SECONDS)
                    continue
                if changes != self._changes:
                    self._stale = True  # read before a change made here: what it read is out of date
                    continue
                self._apply(bans, locked)
                if failing:
                    log.info("bans and room locks read again")
                    failing = False
        finally:
            self._refresh = None

    def _apply(self, bans: list[Ban] | tuple[Ban, ...], locked: frozenset[str]) -> None:
        self._bans = tuple(bans)
        by_handle: dict[str, list[Ban]] = {}
        for ban in self._bans:
            if ban.handle is not None:
                by_handle.setdefault(handle_key(ban.handle), []).append(ban)
        self._by_handle = {key: tuple(found) for key, found in by_handle.items()}
        self._by_address = RangeIndex((ban.address, ban) for ban in self._bans if ban.address is not None)
        self._locked = locked
        self._close_banned()

    def _changed_here(self, bans: tuple[Ban, ...], locked: frozenset[str]) -> None:
        self._changes += 1
        self._apply(bans, locked)

    # -- a moderator's actions --------------------------------------------------------------------

    async def delete_message(self, room: str, message_id: str, actor: str) -> bool:
        """Delete a message of ``room`` (every process's sockets that asked for deletes hear of it);
        False when there is no such message, ``message_id`` not being one included."""
        try:
            deleted = await self._backend.delete_message(room, message_id)
        except InvalidMessageId:
            return False
        if deleted:
            await record(self._backend, AuditAction(actor, "delete", room, details={"message_id": message_id}))
        return deleted

    async def ban(
        self, handle: str | None, address: str | None, room: str | None, seconds: int | None, reason: str, actor: str
    ) -> Ban:
        """Ban ``handle`` or ``address`` (a key of ``rooms.access.addresses.ban_key``), in force here from now:
        the address's sockets here are closed before this returns."""
        ban = await self._backend.add_ban(handle, address, room, seconds, reason)
        self._changed_here((*self._bans, ban), self._locked)
        details = {"ban_id": ban.id, "handle": handle, "address": address, "seconds": seconds}
        await record(self._backend, AuditAction(actor, "ban", room, reason or None, details))
        return ban

    async def bans(self) -> list[Ban]:
        """The bans in force, as the store has them now."""
        return await self._backend.bans()

    async def lift_ban(self, ban: Ban, actor: str) -> bool:
        """Lift ``ban`` (as ``bans`` answered it); False if it is no longer in force."""
        lifted = await self._backend.lift_ban(ban.id)
        if lifted:
            self._changed_here(tuple(kept for kept in self._bans if kept.id != ban.id), self._locked)
            details = {"ban_id": ban.id, "handle": ban.handle, "address": ban.address}
            await record(self._backend, AuditAction(actor, "lift", ban.room, details=details))
        return lifted

    async def set_locked(self, room: str, locked: bool, actor: str) -> None:
        await self._backend.set_locked(room, locked)
        self._changed_here(self._bans, self._locked | {room} if locked else self._locked - {room})
        await record(self._backend, AuditAction(actor, "lock" if locked else "unlock", room))

    async def invited(self, room: str, seconds: int, expires: str, actor: str) -> None:
        """An invite to ``room`` was made (signed, not stored: see ``rooms.access.invites``): only the
        audit log keeps it, without its code, which lets anyone in."""
        await record(
            self._backend, AuditAction(actor, "invite", room, details={"seconds": seconds, "expires": expires})
        )

    def close(self) -> None:
        """Stop reading (shutdown)."""
        self._closed = True
        if self._refresh is not None:
            self._refresh.cancel()

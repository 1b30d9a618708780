"""Who a request comes from: the peer, or the client a trusted reverse proxy names.

Per-address limits and bans are only as good as the address: the proxy's header is believed only when the
peer itself is one of ``server.trusted_proxies``, since anyone else can write it, and only the one header
the proxy sets (``server.client_address_header``) is read: a client could write the other itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from tornado.httputil import HTTPServerRequest

from rooms.access.addresses import FORWARDED_FOR, REAL_IP, AddressList, parse_address

MAX_REMEMBERED = 1024  # peers whose verdict is kept; past it the memo starts again


class FieldLists(Protocol):
    """A request's header fields (Tornado's ``HTTPHeaders``, or ``rooms.web.request_head.Headers``)."""

    def get_list(self, name: str) -> list[str]: ...


class ClientAddresses:
    def __init__(self, trusted_proxies: Iterable[str], header: str = FORWARDED_FOR) -> None:
        self._trusted = AddressList(trusted_proxies)
        self._header = header
        # Whether a peer is a trusted proxy, as found: parsing its address costs more than the rest of the
        # lookup, and a server sees the same few peers (or its proxy) again and again.
        self._found: dict[str, bool] = {}

    def of(self, request: HTTPServerRequest) -> str:
        return self.resolve(request.remote_ip or "", request.headers)

    def resolve(self, peer: str, headers: FieldLists) -> str:
        """The client's address: the peer's, unless the peer is a trusted proxy whose header names another."""
        if not self._is_trusted(peer):
            return peer
        if self._header == REAL_IP:
            # The proxy sets it, replacing what the client sent: the last one is the proxy's.
            named = headers.get_list("X-Real-IP")
            real_ip = parse_address(named[-1]) if named else None
            return str(real_ip) if real_ip is not None else peer
        return self._forwarded_for(headers, peer)

    def _is_trusted(self, peer: str) -> bool:
        trusted = self._found.get(peer)
        if trusted is None:
            trusted = peer in self._trusted
            if len(self._found) >= MAX_REMEMBERED:
                self._found.clear()
            self._found[peer] = trusted
        return trusted

    def forget(self) -> None:
        """Let go of the peers remembered (a new table: a dict keeps the storage of the most it held)."""
        self._found = {}

    def _forwarded_for(self, headers: FieldLists, peer: str) -> str:
        forwarded = headers.get_list("X-Forwarded-For")
        hops = [hop.strip() for line in forwarded for hop in line.split(",") if hop.strip()]
        # Each proxy appends the peer it saw: the first hop from the right that is not a trusted proxy is
        # the client (anything further left was written by the client itself).
        client = peer
        for hop in reversed(hops):
            parsed = parse_address(hop)
            if parsed is None:
                break
            client = str(parsed)
            if client not in self._trusted:
                return client
        return client

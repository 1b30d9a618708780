"""Who a request comes from: the peer, or the client a trusted reverse proxy names.

Per-address limits and bans are only as good as the address: ``X-Forwarded-For`` and ``X-Real-IP`` are
believed only when the peer itself is one of ``server.trusted_proxies``, since anyone else can write them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from tornado.httputil import HTTPServerRequest

from backends.address_blocks import IPV6_HOST_PREFIX

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_address(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.strip().split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def limit_key(address: str) -> str:
    """What per-address limits count by: the IPv4 address, or the /64 an IPv6 address is in."""
    parsed = parse_address(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((parsed, IPV6_HOST_PREFIX), strict=False))
    return str(parsed) if parsed is not None else address


def ban_key(text: str) -> str | None:
    """The key a ban of the address ``text`` names, compared with ``limit_key`` of each client: an IPv4
    address, or the /64 of an IPv6 address (a host rotates its temporary addresses within its /64, so a
    ban of one of them alone would not hold it). A /64 given as such is taken too; None for anything else."""
    text = text.strip()
    if "/" not in text:
        return limit_key(text) if parse_address(text) is not None else None
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen == IPV6_HOST_PREFIX:
        return str(network)
    if isinstance(network, ipaddress.IPv4Network) and network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return None


class AddressList:
    """Addresses and networks (``10.0.0.0/8``, ``::1``) from the config."""

    def __init__(self, listed: Iterable[str]) -> None:
        self._networks: tuple[IPNetwork, ...] = tuple(ipaddress.ip_network(item, strict=False) for item in listed)

    def __contains__(self, address: object) -> bool:
        parsed = parse_address(address) if isinstance(address, str) else None
        return parsed is not None and any(parsed in network for network in self._networks)


class ClientAddresses:
    def __init__(self, trusted_proxies: Iterable[str]) -> None:
        self._trusted = AddressList(trusted_proxies)

    def of(self, request: HTTPServerRequest) -> str:
        """The client's address: the peer's, unless the peer is a trusted proxy that names another."""
        peer = request.remote_ip or ""
        if peer not in self._trusted:
            return peer
        forwarded = request.headers.get_list("X-Forwarded-For")
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
        if hops:
            return client
        real_ip = request.headers.get("X-Real-IP", "")
        if parse_address(real_ip) is not None:
            return str(parse_address(real_ip))
        return peer

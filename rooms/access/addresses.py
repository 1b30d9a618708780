"""Client addresses as the limits and bans count them: the key per-address limits count by (an IPv6
client by its /64), the ranges an address ban may name and the clients it holds against, and the lists
of addresses and networks the config names. Which address a request comes from is the web layer's
(``rooms.web.client_addresses``): it reads the request.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from typing import Generic, TypeVar

from backends.address_blocks import IPV6_HOST_PREFIX

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
FORWARDED_FOR = "x-forwarded-for"
REAL_IP = "x-real-ip"
CLIENT_ADDRESS_HEADERS = (FORWARDED_FOR, REAL_IP)
# The widest ranges a ban may name: wider ones would hold against whole providers or continents.
WIDEST_BAN = {4: 8, 6: 32}
# Where IPv4 addresses sit in IPv6 (``::ffff:192.0.2.4``): such a client is counted as its IPv4 address.
IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
# Clients whose matching ranges a RangeIndex remembers; past it, it starts over.
MAX_REMEMBERED = 100_000
T = TypeVar("T")


def parse_address(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.strip().split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


# A socket's key is looked up for its sender, as it is counted and as it closes, and parsing the address
# is the dearest part of each: parsed once for them all (and for the next sockets of that address).
@functools.lru_cache(maxsize=1024)
def limit_key(address: str) -> str:
    """What per-address limits count by: the IPv4 address, or the /64 an IPv6 address is in."""
    parsed = parse_address(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((parsed, IPV6_HOST_PREFIX), strict=False))
    return str(parsed) if parsed is not None else address


def ban_network(text: str) -> IPNetwork:
    """The clients a ban of ``text`` (an address or a CIDR range) holds against; ``ValueError`` saying
    why for anything else. An IPv6 address, or a range narrower than a /64, stands for its /64: a host
    rotates its temporary addresses within its /64, so a ban of fewer would not hold it. An IPv4-mapped
    IPv6 address or range is its IPv4 one, as clients are counted."""
    try:
        network: IPNetwork = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError("not an IP address or a CIDR range (e.g. 192.0.2.7, 192.0.2.0/24, 2001:db8::/48)") from None
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(IPV4_MAPPED):
        mapped = ipaddress.IPv4Address(int(network.network_address) & 0xFFFFFFFF)
        network = ipaddress.IPv4Network((mapped, network.prefixlen - IPV4_MAPPED.prefixlen))
    widest = WIDEST_BAN[network.version]
    if network.prefixlen < widest:
        raise ValueError(
            f"a /{network.prefixlen} is wider than an IPv{network.version} ban may be "
            f"(/{widest} to /{network.max_prefixlen})"
        )
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen > IPV6_HOST_PREFIX:
        return network.supernet(new_prefix=IPV6_HOST_PREFIX)
    return network


def ban_key(text: str) -> str:
    """How a ban of ``text`` is stored and shown: an IPv4 address as itself, any other range in CIDR
    notation (``10.0.0.0/8``, ``2001:db8:1:2::/64``); ``ValueError`` as ``ban_network``."""
    network = ban_network(text)
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return str(network)


def client_network(key: str) -> IPNetwork | None:
    """A client's ``limit_key`` as the network it stands for (an IPv4 /32, an IPv6 /64)."""
    try:
        return ipaddress.ip_network(key)
    except ValueError:
        return None


class RangeIndex(Generic[T]):
    """Values filed under the ranges they name (bans, under their ``address``), found by any client
    inside a range: an address ban holds against every client in its range."""

    def __init__(self, filed: Iterable[tuple[str, T]]) -> None:
        self._by_range: dict[IPNetwork, list[T]] = {}
        for text, value in filed:
            try:
                network = ban_network(text)
            except ValueError:
                continue  # not what ban_key makes, so it names no client
            self._by_range.setdefault(network, []).append(value)
        self._prefixes = {
            version: sorted({network.prefixlen for network in self._by_range if network.version == version})
            for version in (4, 6)
        }
        # A client is looked up on each of its messages: what it matched is kept until the ranges change.
        self._found: dict[str, tuple[T, ...]] = {}

    def __bool__(self) -> bool:
        return bool(self._by_range)

    def of(self, key: str) -> tuple[T, ...]:
        """The values of every range holding the client ``key`` (a ``limit_key``)."""
        found = self._found.get(key)
        if found is None:
            found = self._find(key)
            if len(self._found) >= MAX_REMEMBERED:
                self._found.clear()
            self._found[key] = found
        return found

    def _find(self, key: str) -> tuple[T, ...]:
        client = client_network(key)
        if client is None:
            return ()
        found: list[T] = []
        for prefix in self._prefixes[client.version]:
            if prefix <= client.prefixlen:
                found.extend(self._by_range.get(client.supernet(new_prefix=prefix), ()))
        return tuple(found)


class AddressList:
    """Addresses and networks (``10.0.0.0/8``, ``::1``) from the config."""

    def __init__(self, listed: Iterable[str]) -> None:
        self._networks: tuple[IPNetwork, ...] = tuple(ipaddress.ip_network(item, strict=False) for item in listed)

    def __contains__(self, address: object) -> bool:
        parsed = parse_address(address) if isinstance(address, str) else None
        return parsed is not None and any(parsed in network for network in self._networks)

"""The blocks of addresses a client's limits count in.

Limits name a client by its key: an IPv4 address, or the /64 an IPv6 address is in
(``2001:db8:1:2::/64``; one host is handed a /64). An IPv6 client is also counted by the /56 and the /48
around its /64: an ISP hands a customer a /56 and a tunnel broker hands out /48s, each holding hundreds
or thousands of /64s, which would otherwise each have a full allowance of their own. A wider block may
use a multiple of what one key may (``ipv6_56_factor``, ``ipv6_48_factor``), so that neighbours behind
one provider are not held to one host's share.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from typing import NamedTuple

IPV6_HOST_PREFIX = 64
IPV6_SITE_PREFIX = 56
IPV6_BROKER_PREFIX = 48


class Block(NamedTuple):
    """A block a client counts in: its key, and how many times one address's allowance it may use."""

    key: str
    factor: int


@dataclass(frozen=True, slots=True)
class AddressBlocks:
    ipv6_56_factor: int = 4
    ipv6_48_factor: int = 16

    def of(self, key: str) -> tuple[Block, ...]:
        """The blocks the client ``key`` counts in: itself first, and for an IPv6 /64 its /56 and /48
        after it (the widest last). Any other key counts alone."""
        wider = _wider_blocks(key) if key.endswith(f"/{IPV6_HOST_PREFIX}") else None
        if wider is None:
            return (Block(key, 1),)
        site, broker = wider
        return (Block(key, 1), Block(site, self.ipv6_56_factor), Block(broker, self.ipv6_48_factor))


# Parsed on every message of an IPv6 client: the clients seen last are remembered.
@functools.lru_cache(maxsize=8192)
def _wider_blocks(key: str) -> tuple[str, str] | None:
    """The /56 and /48 of an IPv6 /64 given as ``2001:db8:1:2::/64``; None for any other key."""
    try:
        network = ipaddress.IPv6Network(key)
    except ValueError:
        return None
    return str(network.supernet(new_prefix=IPV6_SITE_PREFIX)), str(network.supernet(new_prefix=IPV6_BROKER_PREFIX))

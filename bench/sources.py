"""Loopback source addresses for the load generator's clients, so that many connections never run out of ports.

A client socket bound to no address gets 127.0.0.1 and an ephemeral port from a range of about 28,000
(``net.ipv4.ip_local_port_range``); a port a closed client leaves lingers in TIME_WAIT for a minute, so a
few rounds of 19,000 joins would exhaust it. Every address of 127.0.0.0/8 is loopback, each with a port
range of its own: client ``i`` binds to ``127.0.0.(2 + i % 249)`` before connecting.
"""

from __future__ import annotations

from ipaddress import ip_address
from urllib.parse import urlsplit

FIRST_HOST = 2  # 127.0.0.1 is left to everything else on the machine
LAST_HOST = 250
SPREAD = LAST_HOST - FIRST_HOST + 1


def source_address(index: int, spread: int = SPREAD) -> str:
    """The loopback address client ``index`` connects from, cycling over ``spread`` addresses from 127.0.0.2."""
    if not 1 <= spread <= SPREAD:
        raise ValueError(f"spread must be 1 to {SPREAD}, not {spread}")
    return f"127.0.0.{FIRST_HOST + index % spread}"


def local_addr(url: str, index: int, spread: int) -> tuple[str, int] | None:
    """What to bind client ``index`` to before connecting to ``url``: a spread loopback address for a server
    on 127.0.0.0/8 (``spread`` 0: none), else None (the kernel chooses)."""
    host = urlsplit(url).hostname or ""
    try:
        loopback_v4 = ip_address(host).version == 4 and ip_address(host).is_loopback
    except ValueError:
        loopback_v4 = False
    if not spread or not loopback_v4:
        return None
    return (source_address(index, spread), 0)

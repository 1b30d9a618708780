"""The kernel's connection-tracking table, read from /proc: a big room's rounds can fill it.

Where netfilter's connection tracking is loaded (a host with NAT rules, Docker's among them), every TCP
connection, loopback included, takes an entry in one table of at most ``net.netfilter.nf_conntrack_max``,
and keeps it after it closed: 120 s after a close with FINs (``nf_conntrack_tcp_timeout_time_wait``).
Rounds of 19,000 joins add 19,000 entries each, a few seconds apart. Once the table is full the kernel
drops the SYN of each new connection it has no room for (``drop`` in /proc/net/stat/nf_conntrack), the
client sends it again 1, 3, 7 s later, and the round waits on the table, not on the server. The big room
reports the drops of each round so that such a round is told apart.
"""

from __future__ import annotations

from pathlib import Path

STATISTICS = Path("/proc/net/stat/nf_conntrack")
COUNT = Path("/proc/sys/net/netfilter/nf_conntrack_count")
LIMIT = Path("/proc/sys/net/netfilter/nf_conntrack_max")


def drops_in(statistics: str) -> int:
    """The ``drop`` column of /proc/net/stat/nf_conntrack's text summed over its rows, one a CPU, in hex."""
    header, *rows = statistics.split("\n")
    column = header.split().index("drop")
    return sum(int(row.split()[column], 16) for row in rows if row.strip())


def dropped() -> int | None:
    """Packets dropped so far for want of room in the table; None where connections are not tracked."""
    try:
        return drops_in(STATISTICS.read_text())
    except FileNotFoundError:
        return None


def entries() -> tuple[int, int] | None:
    """The entries in the table and its limit; None where connections are not tracked."""
    try:
        return int(COUNT.read_text()), int(LIMIT.read_text())
    except FileNotFoundError:
        return None

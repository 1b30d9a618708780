"""What the benchmark reads of a process from /proc: CPU time and resident memory.

Both come from the kernel's own accounting, so they cost the measured server nothing and count every
thread and every system call it makes (loopback sends included), not only Python code.
"""

from __future__ import annotations

import os
import resource

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` (utime + stime of /proc/PID/stat), in seconds."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        raw = stat.read()
    # The command name may hold spaces or parentheses; the fields after its last ")" are fixed.
    fields = raw[raw.rindex(b")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLOCK_TICKS


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (/proc/PID/statm)."""
    with open(f"/proc/{pid}/statm", "rb") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * PAGE_BYTES // 1024


def total_cpu_seconds(pids: list[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


def total_rss_kib(pids: list[int]) -> int:
    return sum(rss_kib(pid) for pid in pids)


def raise_open_file_limit(wanted: int) -> int:
    """Raise this process's RLIMIT_NOFILE soft limit towards ``wanted`` (never past the hard limit).

    Inherited by child processes, so the runner calls it once for itself, the servers and the load
    generator. Returns the soft limit now in force.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft

"""Raising the process's descriptor limit at start: every client's socket is a descriptor.

The soft limit (``ulimit -n``) is often 1024 while the hard limit, which only a privileged process can
raise, is far higher; a process may lift its own soft limit to the hard one. rooms does so at start and
says in one line how many descriptors it may hold, so the figure an operator sizes by is in the log.
"""

from __future__ import annotations

import logging
import resource

log = logging.getLogger("rooms")


def raise_descriptor_limit() -> int:
    """Lift the soft RLIMIT_NOFILE to the hard limit (if it can); the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            # An unlimited hard limit may be refused past the kernel's nr_open: keep the soft one.
            log.warning("could not raise the descriptor limit from %d to %d: %s", soft, hard, exc)
    return soft


def log_descriptor_limit() -> None:
    limit = raise_descriptor_limit()
    shown = "unlimited" if limit == resource.RLIM_INFINITY else str(limit)
    log.info("rooms may hold %s open descriptors (RLIMIT_NOFILE): one per client connection", shown)

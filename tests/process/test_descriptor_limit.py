"""``server.py`` lifts its soft descriptor limit to the hard one at start and logs the figure once."""

from __future__ import annotations

import re
import resource

from tests.support.processes import ServerProcess

LOW_SOFT_LIMIT = 256


def open_files_limits(pid: int) -> tuple[str, str]:
    """The soft and hard "Max open files" of /proc/PID/limits, as the kernel shows them."""
    with open(f"/proc/{pid}/limits") as limits:
        for line in limits:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return soft, hard
    raise AssertionError("no Max open files line in /proc/PID/limits")


def start_with_limits(soft: int, hard: int) -> ServerProcess:
    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return ServerProcess(preexec_fn=lower)


def descriptor_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if "open descriptors (RLIMIT_NOFILE)" in line]


def test_a_low_soft_limit_is_raised_to_the_hard_limit_and_logged_once():
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard != resource.RLIM_INFINITY and hard > LOW_SOFT_LIMIT, "the test needs a finite hard limit above 256"
    server = start_with_limits(LOW_SOFT_LIMIT, hard)
    try:
        server.wait_healthy()
        assert open_files_limits(server.process.pid) == (str(hard), str(hard))
        log = server.log()
    finally:
        server.stop()
    lines = descriptor_lines(log)
    assert len(lines) == 1, log
    assert re.search(rf"\bINFO\b.*rooms may hold {hard} open descriptors", lines[0]), lines[0]


def test_a_lowered_hard_limit_is_the_one_reached():
    server = start_with_limits(LOW_SOFT_LIMIT, 2 * LOW_SOFT_LIMIT)
    try:
        server.wait_healthy()
        assert open_files_limits(server.process.pid) == (str(2 * LOW_SOFT_LIMIT), str(2 * LOW_SOFT_LIMIT))
        log = server.log()
    finally:
        server.stop()
    lines = descriptor_lines(log)
    assert len(lines) == 1 and f"rooms may hold {2 * LOW_SOFT_LIMIT} open descriptors" in lines[0], log

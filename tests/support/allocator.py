"""What a test reads of a server's allocator: jemalloc found here (else a skip, or a failure under CI, which
installs it), and what the kernel shows of a running process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rooms.service.allocator import find_jemalloc


def require_jemalloc() -> None:
    if find_jemalloc() is None:
        if os.environ.get("CI"):
            pytest.fail("libjemalloc2 is missing; .ci/run installs it")
        pytest.skip("jemalloc is not installed (apt-get install libjemalloc2)")


def jemalloc_mapped(pid: int) -> bool:
    return "/libjemalloc" in Path(f"/proc/{pid}/maps").read_text()


def environment_of(pid: int) -> list[bytes]:
    return Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")


def thread_names(pid: int) -> list[str]:
    return [path.read_text().strip() for path in Path(f"/proc/{pid}/task").glob("*/comm")]

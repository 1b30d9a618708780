"""The benchmark's rooms as real processes: ``rooms`` on jemalloc where it is installed, as rooms chooses it,
and ``rooms-pymalloc`` on Python's own allocator."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.servers import SERVERS, stop
from rooms.service.allocator import find_jemalloc


def mapped_and_environment(name: str, workdir: Path) -> tuple[str, list[bytes]]:
    started = SERVERS[name].start(workdir)
    try:
        pid = started.pids[0]
        return Path(f"/proc/{pid}/maps").read_text(), Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    finally:
        stop(started)


def test_rooms_runs_on_jemalloc_with_python_s_allocator_off(tmp_path: Path):
    if find_jemalloc() is None:
        if os.environ.get("CI"):
            pytest.fail("libjemalloc2 is missing; .ci/run installs it")
        pytest.skip("jemalloc is not installed (apt-get install libjemalloc2)")
    maps, environment = mapped_and_environment("rooms", tmp_path)
    assert "/libjemalloc" in maps
    assert b"PYTHONMALLOC=malloc" in environment
    assert any(entry.startswith(b"MALLOC_CONF=background_thread:true") for entry in environment)


def test_rooms_pymalloc_runs_on_python_s_own_allocator(tmp_path: Path):
    maps, environment = mapped_and_environment("rooms-pymalloc", tmp_path)
    assert "/libjemalloc" not in maps
    assert not any(entry.startswith(b"PYTHONMALLOC=") for entry in environment)

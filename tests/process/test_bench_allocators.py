"""The benchmark's rooms as real processes: ``rooms`` on jemalloc where it is installed, as rooms chooses it,
and ``rooms-pymalloc`` on Python's own allocator."""

from __future__ import annotations

from pathlib import Path

from bench.servers import SERVERS, stop
from tests.support.allocator import environment_of, jemalloc_mapped, require_jemalloc


def mapped_and_environment(name: str, workdir: Path) -> tuple[bool, list[bytes]]:
    started = SERVERS[name].start(workdir)
    try:
        return jemalloc_mapped(started.pids[0]), environment_of(started.pids[0])
    finally:
        stop(started)


def test_rooms_runs_on_jemalloc_with_python_s_allocator_off(tmp_path: Path):
    require_jemalloc()
    mapped, environment = mapped_and_environment("rooms", tmp_path)
    assert mapped
    assert b"PYTHONMALLOC=malloc" in environment
    assert any(entry.startswith(b"MALLOC_CONF=background_thread:true") for entry in environment)


def test_rooms_pymalloc_runs_on_python_s_own_allocator(tmp_path: Path):
    mapped, environment = mapped_and_environment("rooms-pymalloc", tmp_path)
    assert not mapped
    assert not any(entry.startswith(b"PYTHONMALLOC=") for entry in environment)

"""``server.allocator`` in a real started server: ``auto`` runs on jemalloc where it is installed, ``python``
on Python's own, each said at start; ``jemalloc`` where it cannot run stops the server with exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rooms.service.allocator import find_jemalloc
from tests.support.processes import ROOT, ServerProcess, clean_environment, run_server


def require_jemalloc() -> None:
    if find_jemalloc() is None:
        if os.environ.get("CI"):
            pytest.fail("libjemalloc2 is missing; .ci/run installs it")
        pytest.skip("jemalloc is not installed (apt-get install libjemalloc2)")


def environment_of(pid: int) -> list[bytes]:
    return Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")


def thread_names(pid: int) -> list[str]:
    return [path.read_text().strip() for path in Path(f"/proc/{pid}/task").glob("*/comm")]


def started(config: str) -> tuple[str, list[bytes], list[str], str]:
    """The server's map of its memory, its environment and its threads once it answers, and its log."""
    server = ServerProcess(config=config)
    try:
        server.wait_healthy()
        pid = server.process.pid
        return Path(f"/proc/{pid}/maps").read_text(), environment_of(pid), thread_names(pid), server.log()
    finally:
        server.stop()


def test_auto_runs_the_server_on_jemalloc_with_python_s_allocator_off():
    require_jemalloc()
    maps, environment, threads, log = started("")
    assert "/libjemalloc" in maps
    assert b"PYTHONMALLOC=malloc" in environment
    assert any(entry.startswith(b"MALLOC_CONF=background_thread:true") for entry in environment)
    assert "jemalloc_bg_thd" in threads  # the thread that gives freed pages back
    assert "rooms allocates with jemalloc (loaded, Python's small-object allocator off)" in log


def test_python_runs_the_server_on_python_s_own_allocator():
    maps, environment, threads, log = started("server:\n  allocator: python\n")
    assert "/libjemalloc" not in maps and "jemalloc_bg_thd" not in threads
    assert not any(entry.startswith(b"PYTHONMALLOC=") for entry in environment)
    assert "rooms allocates with Python's own allocator (server.allocator: python)" in log


def test_jemalloc_required_where_python_ignores_the_environment_exits_2_saying_why(tmp_path):
    require_jemalloc()
    assert run_server("check-config", config="server:\n  allocator: jemalloc\n").returncode == 0
    path = tmp_path / "rooms.yaml"
    path.write_text("server:\n  allocator: jemalloc\n")
    # -E: PYTHONMALLOC would be ignored, so jemalloc could not take Python's objects.
    result = subprocess.run(
        [sys.executable, "-E", os.path.join(ROOT, "server.py"), "--config", str(path), "--backend", "memory://"],
        cwd=tmp_path,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "rooms: config error: server.allocator: jemalloc cannot be used: Python runs with -E or -I, which ignore "
        "PYTHONMALLOC"
    ]

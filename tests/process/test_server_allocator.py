"""``server.allocator`` in a real started server: ``auto`` runs on jemalloc where it is installed, ``python``
on Python's own, each said at start; ``jemalloc`` where it cannot run stops the server with exit 2."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.allocator import environment_of, jemalloc_mapped, require_jemalloc, thread_names
from tests.support.processes import ROOT, ServerProcess, clean_environment, run_server


def started(config: str) -> tuple[bool, list[bytes], list[str], str]:
    """Whether the server has jemalloc loaded, its environment and its threads once it answers, and its log."""
    server = ServerProcess(config=config)
    try:
        server.wait_healthy()
        pid = server.process.pid
        return jemalloc_mapped(pid), environment_of(pid), thread_names(pid), server.log()
    finally:
        server.stop()


def test_auto_runs_the_server_on_jemalloc_with_python_s_allocator_off():
    require_jemalloc()
    mapped, environment, threads, log = started("")
    assert mapped
    assert b"PYTHONMALLOC=malloc" in environment
    assert any(entry.startswith(b"MALLOC_CONF=background_thread:true") for entry in environment)
    assert "jemalloc_bg_thd" in threads  # the thread that gives freed pages back
    assert "rooms allocates with jemalloc (loaded, Python's small-object allocator off)" in log


def test_python_runs_the_server_on_python_s_own_allocator():
    mapped, environment, threads, log = started("server:\n  allocator: python\n")
    assert not mapped and "jemalloc_bg_thd" not in threads
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

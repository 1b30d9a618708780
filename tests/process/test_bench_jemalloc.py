"""The benchmark's rooms on jemalloc, as a real process: the library is loaded and Python allocates with it."""

from __future__ import annotations

import ctypes.util
import os
from pathlib import Path

import pytest

from bench.servers import SERVERS, stop


def test_rooms_on_jemalloc_has_the_library_mapped_and_python_s_allocator_off(tmp_path: Path):
    if ctypes.util.find_library("jemalloc") is None:
        if os.environ.get("CI"):
            pytest.fail("libjemalloc2 is missing; .ci/run installs it")
        pytest.skip("jemalloc is not installed (apt-get install libjemalloc2)")
    started = SERVERS["rooms-jemalloc"].start(tmp_path)
    try:
        pid = started.pids[0]
        assert "libjemalloc" in Path(f"/proc/{pid}/maps").read_text()
        environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert b"PYTHONMALLOC=malloc" in environment
        assert any(entry.startswith(b"MALLOC_CONF=background_thread:true") for entry in environment)
    finally:
        stop(started)

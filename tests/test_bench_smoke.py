"""Keeps the benchmark's load generator working: a tiny run against a real rooms process.

No timing is asserted (this is not a benchmark); only that every message reached every client of its
room exactly once, in order, and that the figures the benchmark relies on are there.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def rooms_server(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A rooms process on the memory backend with its rate limit raised, as the benchmark runs it."""
    port = free_port()
    config = tmp_path / "rooms.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "server": {"host": "127.0.0.1", "port": port, "log_level": "warning"},
                "backend": {"url": "memory://"},
                "limits": {"messages_per_second": 100_000, "burst": 100_000},
            }
        )
    )
    process = subprocess.Popen([sys.executable, "server.py", "--config", str(config)], cwd=ROOT)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert process.poll() is None, "rooms exited at start"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "rooms did not listen in time"
                time.sleep(0.05)
        yield f"ws://127.0.0.1:{port}", process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_load_generator_sees_every_message_once_in_order(rooms_server: tuple[str, int]) -> None:
    url, pid = rooms_server
    command = [
        sys.executable, "-m", "bench.loadgen", "--url", url, "--server-pid", str(pid),
        "--rooms", "2", "--clients", "3", "--senders", "2", "--window", "4", "--messages", "15",
        "--room-prefix", "smoke", "--settle", "0",
    ]  # fmt: skip
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert finished.returncode == 0, finished.stderr
    result = json.loads(finished.stdout)

    assert result["connected"] == result["joined"] == 6
    assert result["accepted"] == 2 * 2 * 15
    assert result["deliveries_expected"] == result["deliveries_received"] == 2 * 2 * 15 * 3
    assert (result["lost"], result["duplicated"], result["out_of_order"]) == (0, 0, 0)
    assert result["errors"] == {}
    assert result["server_cpu_us_per_delivery"] is not None
    assert result["server_rss_kib"]["connected"] > 0
    assert set(result["latency_ms"]) == {"p50", "p90", "p99", "max"}

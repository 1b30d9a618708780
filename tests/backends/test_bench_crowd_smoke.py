"""Keeps the hundred-thousand scenario's clients working: a tiny crowd over two server.py processes on Redis.

No timing is asserted (this is not a benchmark); only that every client joined the one room through its own
process and that one message reached every client once, whichever process it was sent through.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import yaml

from tests.support.processes import ROOT, ServerProcess
from tests.support.redis import REDIS_URL, delete_prefix, prefixed_url, require_redis, unique_prefix

PROCESSES = 2
CLIENTS = 41  # not a multiple of the processes: the shares differ by one


def test_the_crowd_joins_one_room_over_two_processes_and_one_message_reaches_everyone() -> None:
    asyncio.run(require_redis())
    prefix = unique_prefix()
    config = {"server": {"log_level": "warning"}, "limits": {"messages_per_second": 100_000, "burst": 100_000}}
    servers = [ServerProcess(prefixed_url(REDIS_URL, prefix), config=yaml.safe_dump(config)) for _ in range(PROCESSES)]
    try:
        command = [sys.executable, "-m", "bench.crowd", "--clients", str(CLIENTS), "--room-prefix", "smokecrowd"]
        for server in servers:
            server.wait_healthy()
            command += ["--url", f"ws://127.0.0.1:{server.port}", "--server-pid", str(server.process.pid)]
        command += ["--redis-url", REDIS_URL, "--settle", "0", "--drain-idle", "10"]
        finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    finally:
        for server in servers:
            server.stop()
        asyncio.run(delete_prefix(REDIS_URL, prefix))
    assert finished.returncode == 0, finished.stderr
    result = json.loads(finished.stdout)

    assert result["connected"] == result["joined_by_process"] == [21, 20]
    assert result["joined"] == CLIENTS and result["connect_failures"] == {}
    message = result["one_message"]
    assert message["deliveries_expected"] == message["deliveries_received"] == CLIENTS
    assert (result["lost"], result["duplicated"], result["out_of_order"], message["dropped"]) == (0, 0, 0, 0)
    assert message["errors"] == []
    assert len(result["join_cpu_us_by_server"]) == len(result["server_rss_kib"]["joined"]) == PROCESSES
    assert result["redis_rss_kib"]["joined"] > 0 and result["machine_memory_kib"]["joined"] > 0
    assert set(message["latency_ms"]) == {"p50", "p99", "max"}

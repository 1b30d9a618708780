"""The crowd: one room spread over several rooms processes on one Redis, everyone joined, one message to all.

``python -m bench.crowd --url ws://127.0.0.1:P1 --server-pid PID1 ... --clients 100000 --room-prefix crowd``
(one ``--url`` and ``--server-pid`` per server, in the same order) prints one JSON object. The clients are
split evenly over the servers, one client process (``bench.crowd_clients``) per server, so that no process
holds more than its share of descriptors; together their clients come from every loopback source address.

- **Joining.** Every client process connects its share, at most 100 handshakes at a time each; then one
  client sends a marker message (again every ``--marker-wait`` seconds while some have none) until every
  connected client has one: a client counts as joined once the room has delivered to it. **join_seconds**
  runs from starting the client processes to the last marker; each server's CPU (utime + stime) over it,
  divided by the clients it holds, is its CPU per join (the handshakes, the joins and a marker or two).
- **Held.** RSS of each server, each client process and Redis (``used_memory_rss``) once all joined and
  after ``--settle`` seconds, against before; the machine's memory in use (MemTotal - MemAvailable) the same.
- **Reaching all.** One client sends one message; every joined client's latency from the send to reading it,
  over all processes: p50 / p99 / max, and how many were lost or came twice; the servers' and the client
  processes' CPU from the send to the last reading.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import IO, Any

from bench.loadgen import percentile_ms
from bench.procstat import cpu_seconds, raise_open_file_limit, rss_kib
from bench.servers import BENCH_REDIS_URL, ROOT


def memory_in_use_kib() -> int:
    """MemTotal - MemAvailable: what the whole machine's processes and kernel hold."""
    fields = {}
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            name, value = line.split(":", 1)
            fields[name] = int(value.split()[0])
    return fields["MemTotal"] - fields["MemAvailable"]


def redis_rss_kib(url: str) -> int | None:
    """The Redis server's resident memory as it reports it; None if it does not answer."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_timeout=5)
        try:
            return int(client.info("memory")["used_memory_rss"]) // 1024
        finally:
            client.close()
    except redis.RedisError:
        return None


class ClientProcesses:
    """The client processes, one per server, spoken to a command a line (``bench.crowd_clients``)."""

    def __init__(self, options: argparse.Namespace, room: str) -> None:
        count = len(options.url)
        shares = [options.clients // count + (1 if i < options.clients % count else 0) for i in range(count)]
        self.shares = shares
        self.processes: list[subprocess.Popen[str]] = []
        for index, url in enumerate(options.url):
            command = [sys.executable, "-m", "bench.crowd_clients", "--url", url, "--room", room]
            command += ["--clients", str(shares[index]), "--first", str(sum(shares[:index]))]
            command += ["--connect-concurrency", str(options.connect_concurrency)]
            self.processes.append(
                subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            )

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    @staticmethod
    def read(process: subprocess.Popen[str]) -> dict[str, Any]:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"client process {process.pid} exited with status {process.wait()}")
        figures: dict[str, Any] = json.loads(line)
        return figures

    @staticmethod
    def tell(process: subprocess.Popen[str], command: str) -> None:
        stdin: IO[str] | None = process.stdin
        assert stdin is not None
        stdin.write(command + "\n")
        stdin.flush()

    def all(self, command: str | None) -> list[dict[str, Any]]:
        """Send ``command`` to every process (None: only read), then read one answer from each."""
        if command is not None:
            for process in self.processes:
                self.tell(process, command)
        return [self.read(process) for process in self.processes]

    def one(self, command: str) -> dict[str, Any]:
        self.tell(self.processes[0], command)
        return self.read(self.processes[0])

    def close(self) -> None:
        for process in self.processes:
            if process.stdin is not None:
                process.stdin.close()
        for process in self.processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def join_all(clients: ClientProcesses, options: argparse.Namespace) -> dict[str, Any]:
    """Connect every share, then send markers until every connected client has one (or time is up)."""
    connected = clients.all(None)
    deadline = time.monotonic() + options.step_timeout
    attempt, ready = 0, [{"ready": 0, "connected": c["connected"]} for c in connected]
    while time.monotonic() < deadline:
        clients.one(f"marker {attempt}")
        attempt += 1
        ready = clients.all(f"ready {options.marker_wait}")
        if all(r["ready"] >= r["connected"] for r in ready):
            break
    failures: dict[str, int] = {}
    for share in connected:
        for reason, count in share["failures"].items():
            failures[reason] = failures.get(reason, 0) + count
    return {
        "connected": [c["connected"] for c in connected],
        "joined_by_process": [r["ready"] for r in ready],
        "connect_failures": failures,
        "connect_seconds": [c["seconds"] for c in connected],
        "markers": attempt,
    }


def reach_all(clients: ClientProcesses, options: argparse.Namespace) -> dict[str, Any]:
    clients.one("send")
    answers = clients.all(f"receive {options.drain_idle}")
    ordered = sorted(latency for a in answers for latency in a["latencies_ns"])
    expected, received = sum(a["expected"] for a in answers), sum(a["received"] for a in answers)
    return {
        "deliveries_expected": expected,
        "deliveries_received": received,
        "lost": expected - received,
        "duplicated": sum(a["duplicated"] for a in answers),
        "out_of_order": sum(a["out_of_order"] for a in answers),
        "dropped": sum(a["dropped"] for a in answers),
        "errors": [a["errors"] for a in answers if a["errors"]],
        "latency_ms": {
            "p50": percentile_ms(ordered, 0.50),
            "p99": percentile_ms(ordered, 0.99),
            "max": round(ordered[-1] / 1e6, 3) if ordered else None,
        },
    }


def per_client(total: float, count: int) -> float | None:
    return round(total / count, 2) if count else None


def run_crowd(options: argparse.Namespace) -> dict[str, Any]:
    pids: list[int] = options.server_pid
    room = f"{options.room_prefix}0"
    server_rss_empty = [rss_kib(pid) for pid in pids]
    redis_empty, machine_empty = redis_rss_kib(options.redis_url), memory_in_use_kib()
    cpu_before = [cpu_seconds(pid) for pid in pids]
    began = time.monotonic()
    clients = ClientProcesses(options, room)
    try:
        figures: dict[str, Any] = {"clients": options.clients, "servers": len(pids), "load_before": os.getloadavg()}
        figures.update(join_all(clients, options))
        figures["join_seconds"] = round(time.monotonic() - began, 3)
        join_cpu = [cpu_seconds(pid) - before for pid, before in zip(pids, cpu_before, strict=True)]
        joined = figures["joined_by_process"]
        figures["joined"] = sum(joined)
        figures["join_cpu_us_by_server"] = [per_client(c * 1e6, n) for c, n in zip(join_cpu, joined, strict=True)]
        figures["join_cpu_us"] = per_client(sum(join_cpu) * 1e6, figures["joined"])
        time.sleep(options.settle)
        server_rss = [rss_kib(pid) for pid in pids]
        client_rss = [rss_kib(pid) for pid in clients.pids]
        redis_joined, machine_joined = redis_rss_kib(options.redis_url), memory_in_use_kib()
        figures["server_rss_kib"] = {"empty": server_rss_empty, "joined": server_rss}
        figures["kib_per_connection_by_server"] = [
            per_client(after - before, n) for before, after, n in zip(server_rss_empty, server_rss, joined, strict=True)
        ]
        figures["kib_per_connection"] = per_client(sum(server_rss) - sum(server_rss_empty), figures["joined"])
        figures["client_rss_kib"] = client_rss
        figures["client_rss_kib_per_client"] = per_client(sum(client_rss), figures["joined"])
        figures["redis_rss_kib"] = {"empty": redis_empty, "joined": redis_joined}
        figures["machine_memory_kib"] = {"before": machine_empty, "joined": machine_joined}
        cpu_before = [cpu_seconds(pid) for pid in pids + clients.pids]
        figures["one_message"] = reach_all(clients, options)
        reach_cpu = [cpu_seconds(pid) - before for pid, before in zip(pids + clients.pids, cpu_before, strict=True)]
        figures["reach_cpu_s"] = {
            "servers": round(sum(reach_cpu[: len(pids)]), 3),
            "clients": round(sum(reach_cpu[len(pids) :]), 3),
        }
        figures["lost"] = figures["one_message"]["lost"]
        figures["duplicated"] = figures["one_message"]["duplicated"]
        figures["out_of_order"] = figures["one_message"]["out_of_order"]
        figures["load_after"] = os.getloadavg()
        return figures
    finally:
        clients.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.crowd", description=__doc__.splitlines()[0])
    parser.add_argument("--url", action="append", required=True, help="ws://host:port of a server")
    parser.add_argument("--server-pid", type=int, action="append", required=True, help="the servers, as --url")
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--room-prefix", default="crowd")
    parser.add_argument("--redis-url", default=BENCH_REDIS_URL, help="the servers' Redis, for its memory")
    parser.add_argument("--connect-concurrency", type=int, default=100, help="handshakes at a time per process")
    parser.add_argument("--marker-wait", type=float, default=20, help="seconds before a marker is sent again")
    parser.add_argument("--step-timeout", type=float, default=240, help="longest wait for everyone to join")
    parser.add_argument("--drain-idle", type=float, default=20, help="stop waiting after this long with no delivery")
    parser.add_argument("--settle", type=float, default=2.0, help="pause before the RSS readings")
    options = parser.parse_args(argv)
    if len(options.url) != len(options.server_pid):
        parser.error("give one --server-pid per --url, in the same order")
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    raise_open_file_limit(1024 + options.clients // len(options.url))
    json.dump(run_crowd(options), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The big-room load: many clients join one room and stay idle, one message and a burst reach them all, all leave.

``python -m bench.bigroom --url ws://127.0.0.1:8000 --server-pid PID --clients 19000 --checkpoint 2000``
prints one JSON object. In the first round the clients join in two steps (the first ``--checkpoint``, then
the rest), then client 0 sends ``--singles`` messages one after another, each reaching all before the next,
and then ``--burst`` at once, then every client leaves; the further ``--rounds`` only join all and leave, to
see whether memory comes back each time.

- **Joining.** The server's CPU (utime + stime) from the first connect until every client has received its
  first frame, divided by the clients that joined. The first frame is a marker broadcast that client 0
  sends once the last handshake is done, so the figure holds the handshakes and one delivery to each (a
  server such as rooms sends nothing on joining unless asked for history or presence). The step at the
  checkpoint is counted without the pause in it.
- **Held.** RSS growth per client from the empty process to the checkpoint, and to all joined, each read
  after a short settle.
- **Reaching all.** Latency from the send to each client reading the frame, every delivery checked once
  each and in order (``bench.clients``). One message's p99 moves with whatever else the machine does at
  that instant, so ``one_message`` is the single message whose p99 is the median of the ``--singles``
  (all their p99s in ``single_p99s_ms``).
- **Leaving.** Every client closes its connection; once the server holds no more descriptors than it did
  empty, and after a settle, its RSS against the empty process's.
- **The machine's table.** Each round says how full the kernel's connection-tracking table was as it
  began and how many packets it dropped for want of room while the round joined (``bench.conntrack``):
  a round whose SYNs were dropped there waited on the table, not on the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from array import array
from collections import Counter
from collections.abc import Callable
from typing import Any

from bench import conntrack
from bench.clients import TEXT, Client, Run, Sender, connect_spread, monotonic_ns, run_on_fastest_loop
from bench.loadgen import own_cpu_seconds, percentile_ms
from bench.procstat import raise_open_file_limit, total_cpu_seconds, total_rss_kib
from bench.sources import SPREAD

MARKER_RESEND_SECONDS = 20.0  # a marker is sent again only if some client still has none by then
FD_SLACK = 8  # descriptors the server may hold beyond its empty count once all have left (a log, a timer)


def open_descriptors(pids: list[int]) -> int:
    return sum(len(os.listdir(f"/proc/{pid}/fd")) for pid in pids)


class Room:
    """One round's clients in the room, with their shared counters."""

    def __init__(self, options: argparse.Namespace, make_client: Callable[[Run], Client] | None = None) -> None:
        self.options = options
        self.make_client = make_client or (lambda run: Client(run, 0))
        # Sender reads window, messages and rate: the burst goes out at once, one message before it.
        self.run = Run(argparse.Namespace(window=options.burst, messages=1, rate=None))
        self.clients: list[Client] = []
        self.failures: Counter[str] = Counter()

    @property
    def url(self) -> str:
        query = f"?features={self.options.features}" if self.options.features else ""
        return f"{self.options.url.rstrip('/')}/chat/{self.options.room}/{query}"

    def connected(self) -> list[Client]:
        return [c for c in self.clients if c.transport is not None and not c.transport.is_disconnected]

    async def join(self, count: int) -> None:
        """Connect ``count`` more clients, then wait until every connected one has received a marker."""
        first = len(self.clients)
        batch = [self.make_client(self.run) for _ in range(count)]
        self.clients += batch
        await connect_spread(batch, [self.url] * count, first, self.options, self.failures)
        await self.marker()

    async def marker(self) -> None:
        connected = self.connected()
        if not connected:
            return
        deadline = time.monotonic() + self.options.step_timeout
        attempt = 0
        while self.run.ready < len(connected) and time.monotonic() < deadline:
            text = b'{"handle":"warm","message":"bench:w:0:%d:%d"}' % (attempt, monotonic_ns())
            connected[0].transport.send(TEXT, text)  # type: ignore[union-attr]
            attempt += 1
            resend = time.monotonic() + MARKER_RESEND_SECONDS
            while self.run.ready < len(connected) and time.monotonic() < min(resend, deadline):
                await asyncio.sleep(0.01)

    async def reach_all(self, sender: Sender, limit: int) -> dict[str, Any]:
        """Send up to ``limit`` messages in all (the window lets them go at once); wait for every delivery."""
        run = self.run
        run.latencies_ns = array("q")
        received_before = run.received
        sender.limit = limit
        count = limit - sender.seq
        expected = count * sum(1 for c in self.clients if c.ready)
        run.measuring = run.sending = True
        started = time.monotonic()
        sender.fill_window()
        last_progress, last_received = time.monotonic(), run.received
        while run.received - received_before < expected:
            now = time.monotonic()
            if run.received != last_received:
                last_progress, last_received = now, run.received
            elif now - last_progress > self.options.drain_idle:
                break
            await asyncio.sleep(0.005)
        run.measuring = run.sending = False
        ordered = sorted(run.latencies_ns)
        received = run.received - received_before
        return {
            "messages": count,
            "deliveries_expected": expected,
            "deliveries_received": received,
            "seconds": round(time.monotonic() - started, 3),
            "latency_ms": {
                "p50": percentile_ms(ordered, 0.50),
                "p99": percentile_ms(ordered, 0.99),
                "max": round(ordered[-1] / 1e6, 3) if ordered else None,
            },
        }

    async def leave(self, pids: list[int], empty_descriptors: int) -> float:
        """Close every client; the seconds until the server holds about as many descriptors as it did empty."""
        started = time.monotonic()
        for client in self.clients:
            if client.transport is not None:
                client.transport.disconnect()
        deadline = started + self.options.step_timeout
        while open_descriptors(pids) > empty_descriptors + FD_SLACK and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return time.monotonic() - started


async def timed_join(room: Room, count: int, pids: list[int]) -> tuple[float, float]:
    """Join ``count`` clients; the server's CPU seconds and the wall seconds it took."""
    cpu_before, began = total_cpu_seconds(pids), time.monotonic()
    await room.join(count)
    return total_cpu_seconds(pids) - cpu_before, time.monotonic() - began


async def settled_rss(pids: list[int], seconds: float) -> int:
    await asyncio.sleep(seconds)
    return total_rss_kib(pids)


async def one_round(
    options: argparse.Namespace, number: int, pids: list[int], empty_descriptors: int, figures: dict[str, Any]
) -> dict[str, Any]:
    options.room = f"{options.room_prefix}{number}"
    room = Room(options)
    first = number == 0 and 0 < options.checkpoint < options.clients
    join_cpu, join_seconds = 0.0, 0.0
    table_at_start, drops_before = conntrack.entries(), conntrack.dropped()
    if first:
        join_cpu, join_seconds = await timed_join(room, options.checkpoint, pids)
        figures["rss_checkpoint_kib"] = await settled_rss(pids, options.settle)
        figures["checkpoint_joined"] = room.run.ready
        figures["checkpoint_join_cpu_us"] = round(join_cpu * 1e6 / max(room.run.ready, 1), 1)
    cpu, seconds = await timed_join(room, options.clients - len(room.clients), pids)
    join_cpu, join_seconds = join_cpu + cpu, join_seconds + seconds
    joined = room.run.ready
    drops_after = conntrack.dropped()
    result: dict[str, Any] = {
        "joined": joined,
        "connect_failures": dict(room.failures.most_common(5)),
        "conntrack_entries_at_start": table_at_start,
        "conntrack_drops": None if drops_before is None or drops_after is None else drops_after - drops_before,
        "join_seconds": round(join_seconds, 3),
        "join_cpu_s": round(join_cpu, 3),
        "join_cpu_us": round(join_cpu * 1e6 / joined, 1) if joined else None,
        "rss_joined_kib": await settled_rss(pids, options.settle),
    }
    if number == 0 and joined:
        sender = Sender(room.run, room.clients[0], 0)
        room.clients[0].sender = sender
        cpu_before = total_cpu_seconds(pids)
        singles = [await room.reach_all(sender, sent) for sent in range(1, options.singles + 1)]
        figures["burst"] = await room.reach_all(sender, options.singles + options.burst)
        figures["reach_all_cpu_s"] = round(total_cpu_seconds(pids) - cpu_before, 3)
        by_p99 = sorted(singles, key=lambda single: single["latency_ms"]["p99"] or 0.0)
        figures["one_message"] = by_p99[(len(by_p99) - 1) // 2]
        figures["single_p99s_ms"] = [single["latency_ms"]["p99"] for single in singles]
        figures["lost"] = sum(
            reached["deliveries_expected"] - reached["deliveries_received"] for reached in [*singles, figures["burst"]]
        )
        figures["duplicated"], figures["out_of_order"] = room.run.duplicated, room.run.out_of_order
        figures["errors"] = dict(room.run.errors)
    result["leave_seconds"] = round(await room.leave(pids, empty_descriptors), 3)
    result["descriptors_left"] = open_descriptors(pids)
    result["rss_left_kib"] = await settled_rss(pids, options.settle)
    return result


async def run_rounds(options: argparse.Namespace) -> dict[str, Any]:
    pids: list[int] = options.server_pid
    empty_descriptors = open_descriptors(pids)
    rss_empty = total_rss_kib(pids)
    own_before = own_cpu_seconds()
    figures: dict[str, Any] = {"clients": options.clients, "checkpoint": options.checkpoint, "rss_empty_kib": rss_empty}
    rounds = [await one_round(options, number, pids, empty_descriptors, figures) for number in range(options.rounds)]
    figures["join_leave_rounds"] = rounds
    figures["descriptors_empty"] = empty_descriptors
    first, last = rounds[0], rounds[-1]
    figures["joined"] = first["joined"]
    figures["join_cpu_us"] = first["join_cpu_us"]
    if "rss_checkpoint_kib" in figures and figures["checkpoint_joined"]:
        growth = figures["rss_checkpoint_kib"] - rss_empty
        figures["kib_per_connection_checkpoint"] = round(growth / figures["checkpoint_joined"], 2)
    if first["joined"]:
        figures["kib_per_connection"] = round((first["rss_joined_kib"] - rss_empty) / first["joined"], 2)
    figures["left_percent_of_empty"] = round(100 * last["rss_left_kib"] / rss_empty, 1)
    figures["left_growth_percent"] = round(
        100 * (last["rss_left_kib"] - first["rss_left_kib"]) / first["rss_left_kib"], 1
    )
    figures["loadgen_cpu_s"] = round(own_cpu_seconds() - own_before, 3)
    return figures


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.bigroom", description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="ws://host:port of the server")
    parser.add_argument("--server-pid", type=int, action="append", required=True, help="server process to measure")
    parser.add_argument("--clients", type=int, default=19_000)
    parser.add_argument("--checkpoint", type=int, default=2_000, help="first round: memory read after this many too")
    parser.add_argument("--singles", type=int, default=9, help="messages sent one at a time, each reaching all first")
    parser.add_argument("--burst", type=int, default=10, help="messages sent at once after the single ones")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of joining and leaving")
    parser.add_argument("--room-prefix", default="big")
    parser.add_argument("--features", default="", help="?features= on every socket URL, e.g. presence,typing")
    parser.add_argument("--connect-concurrency", type=int, default=100)
    parser.add_argument("--sources", type=int, default=SPREAD, help="loopback source addresses (bench.sources)")
    parser.add_argument("--handshake-timeout", type=float, default=60)
    parser.add_argument("--step-timeout", type=float, default=120, help="longest wait for a marker or for leaving")
    parser.add_argument("--drain-idle", type=float, default=20, help="stop waiting after this long with no delivery")
    parser.add_argument("--settle", type=float, default=1.0, help="pause before each RSS reading")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    raise_open_file_limit(options.clients + 1024)
    result = run_on_fastest_loop(run_rounds(options))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

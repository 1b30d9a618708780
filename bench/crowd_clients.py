"""One client process of the crowd (``bench.crowd``): its share of the room's clients, on one server.

``python -m bench.crowd_clients --url ws://127.0.0.1:PORT --room LABEL --clients 16667 --first 0`` connects
its clients (client ``i`` from the loopback address of ``--first + i``, so that the processes together
spread over every source address, ``bench.sources``), prints one JSON line, and then answers one command
a line on standard input with one JSON line on standard output:

- ``marker N``: send marker message ``N`` through this process's first client (only one process is told);
- ``ready SECONDS``: wait until every connected client has some marker, at most that long; how many have;
- ``send``: send the measured message through the first client; the monotonic time of sending;
- ``receive SECONDS``: wait until every client that has a marker has the measured message, or until none
  arrives for that long; the count, duplicates and each latency (``time.monotonic_ns`` is one clock for the
  whole machine, so a time read here compares with the sending process's);
- end of input: close every socket and exit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from typing import Any

from picows import WSTransport

from bench.clients import TEXT, Client, Run, connect_spread, monotonic_ns, run_on_fastest_loop
from bench.procstat import raise_open_file_limit
from bench.sources import SPREAD

POLL_SECONDS = 0.01


class Share:
    """This process's clients in the room, with their shared counters."""

    def __init__(self, options: argparse.Namespace) -> None:
        self.options = options
        self.run = Run(argparse.Namespace(window=1, messages=1, rate=None))
        self.clients = [Client(self.run, 0) for _ in range(options.clients)]
        self.failures: Counter[str] = Counter()
        self.url = f"{options.url.rstrip('/')}/chat/{options.room}/"

    def connected(self) -> list[Client]:
        return [c for c in self.clients if c.transport is not None and not c.transport.is_disconnected]

    async def connect(self) -> dict[str, Any]:
        began = time.monotonic()
        await connect_spread(
            self.clients, [self.url] * len(self.clients), self.options.first, self.options, self.failures
        )
        return {
            "connected": len(self.connected()),
            "failures": dict(self.failures.most_common(5)),
            "seconds": round(time.monotonic() - began, 3),
        }

    def first_transport(self) -> WSTransport | None:
        connected = self.connected()
        return connected[0].transport if connected else None

    def marker(self, attempt: int) -> dict[str, Any]:
        transport = self.first_transport()
        if transport is not None:
            transport.send(TEXT, b'{"handle":"warm","message":"bench:w:0:%d:%d"}' % (attempt, monotonic_ns()))
        return {"marker": attempt, "sent": transport is not None}

    async def ready(self, seconds: float) -> dict[str, Any]:
        connected = len(self.connected())
        deadline = time.monotonic() + seconds
        while self.run.ready < connected and time.monotonic() < deadline:
            await asyncio.sleep(POLL_SECONDS)
        return {"ready": self.run.ready, "connected": len(self.connected())}

    def send(self) -> dict[str, Any]:
        transport = self.first_transport()
        sent_ns = monotonic_ns()
        if transport is not None:
            transport.send(TEXT, b'{"handle":"s0","message":"bench:m:0:0:%d"}' % sent_ns)
        return {"sent_ns": sent_ns if transport is not None else None}

    async def receive(self, idle_seconds: float) -> dict[str, Any]:
        run = self.run
        expected = sum(1 for c in self.clients if c.ready)
        last_progress, last_received = time.monotonic(), run.received
        while run.received < expected:
            if run.received != last_received:
                last_progress, last_received = time.monotonic(), run.received
            elif time.monotonic() - last_progress > idle_seconds:
                break
            await asyncio.sleep(POLL_SECONDS)
        return {
            "expected": expected,
            "received": run.received,
            "duplicated": run.duplicated,
            "out_of_order": run.out_of_order,
            "errors": dict(run.errors),
            "dropped": sum(1 for c in self.clients if c.ready and c.transport and c.transport.is_disconnected),
            "latencies_ns": list(run.latencies_ns),
        }

    def close(self) -> None:
        for client in self.clients:
            if client.transport is not None:
                client.transport.disconnect()


async def serve(options: argparse.Namespace) -> None:
    share = Share(options)
    answer(await share.connect())
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        command, _, argument = line.strip().partition(" ")
        if command == "marker":
            answer(share.marker(int(argument)))
        elif command == "ready":
            answer(await share.ready(float(argument)))
        elif command == "send":
            answer(share.send())
        elif command == "receive":
            answer(await share.receive(float(argument)))
        else:
            answer({"error": f"unknown command {command!r}"})
    share.close()
    await asyncio.sleep(0.1)  # let the close frames and FINs go out before the process ends


def answer(figures: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(figures) + "\n")
    sys.stdout.flush()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.crowd_clients", description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="ws://host:port of this process's server")
    parser.add_argument("--room", required=True, help="the room's label")
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--first", type=int, default=0, help="the number of this process's first client")
    parser.add_argument("--connect-concurrency", type=int, default=100)
    parser.add_argument("--sources", type=int, default=SPREAD, help="loopback source addresses (bench.sources)")
    parser.add_argument("--handshake-timeout", type=float, default=120)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    raise_open_file_limit(options.clients + 1024)
    run_on_fastest_loop(serve(options))
    return 0


if __name__ == "__main__":
    sys.exit(main())

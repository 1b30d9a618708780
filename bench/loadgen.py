"""The benchmark's load generator: many WebSocket clients in one process, every frame checked.

``python -m bench.loadgen --url ws://127.0.0.1:8000 --rooms 1 --clients 500 --senders 5 --window 10
--duration 5 --server-pid PID`` prints one JSON object (built at the end of ``run_load``).

It runs as its own process, on picows (frame parsing in compiled code) and uvloop when installed, so
that the server, not the load generator, is what is measured; its own CPU is reported next to the
server's so a reader can tell when it was the bottleneck after all. Send and receive happen in this
one process, so latency is measured on one monotonic clock (see ``bench.clients`` for the message
format).

Presence and typing (``--features presence,typing --hello spread --typing-fraction 0.1``): every client
asks for the features on its socket URL and announces a handle of its own (``c<number>``) with
``hello``; the last ``--typing-fraction`` of each room's clients announce theirs on connecting and send
``{"type":"typing"}`` every ``--typing-interval`` seconds while the senders send, their first frames
spread over one interval. With ``--hello spread`` the others announce theirs one by one over the
sending time, in a shuffled order, so the room's presence changes all through the measurement (a busy
room's worst case: a presence frame every half second to every socket); with ``--hello connect`` all
announce on connecting and presence is steady while measuring. The presence and typing frames received
while measuring are counted, apart from the deliveries (which count messages only).

Reactions (``--features edits,reactions --react-fraction 0.1 --react-interval 0.2``, see
``bench.reactions``): the reactions frames received are counted apart from the messages, and both count
as deliveries in the CPU and load-generator figures per delivery.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import sys
import time
from collections import Counter
from typing import Any

from bench.clients import TEXT, Client, Run, Sender, Typist, connect_spread, monotonic_ns
from bench.procstat import raise_open_file_limit, total_cpu_seconds, total_rss_kib
from bench.reactions import Reactor, expected_reactions, plan_reactors, reaction_figures
from bench.sources import SPREAD


def room_url(options: argparse.Namespace, room: int, index: int) -> str:
    base = options.url[(room * options.clients + index) % len(options.url)].rstrip("/")
    query = f"?features={options.features}" if options.features else ""
    return f"{base}/chat/{options.room_prefix}{room}/{query}"


async def connect_all(run: Run, clients: list[Client]) -> Counter[str]:
    options = run.options
    failures: Counter[str] = Counter()
    urls = [room_url(options, client.room, i % options.clients) for i, client in enumerate(clients)]
    await connect_spread(clients, urls, 0, options, failures)
    return failures


async def warm_up(run: Run, rooms: list[list[Client]], timeout: float) -> bool:
    """Send warm-up messages until every connected client has received one.

    A client that received a broadcast is surely in its room, so no measured message can be sent
    before a receiver has joined (which would count as lost, though the server did nothing wrong).
    """
    connected = [[c for c in room if c.transport is not None and not c.transport.is_disconnected] for room in rooms]
    total = sum(len(room) for room in connected)
    deadline = time.monotonic() + timeout
    attempt = 0
    while run.ready < total and time.monotonic() < deadline:
        for index, room in enumerate(connected):
            if room and not all(client.ready for client in room):
                text = b'{"handle":"warm","message":"bench:w:%d:%d:%d"}' % (index, attempt, monotonic_ns())
                room[0].transport.send(TEXT, text)  # type: ignore[union-attr]
        attempt += 1
        for _ in range(25):
            await asyncio.sleep(0.02)
            if run.ready >= total:
                break
    return run.ready >= total


def expected_deliveries(rooms: list[list[Client]], senders: list[Sender]) -> int:
    accepted_per_room: Counter[int] = Counter()
    for sender in senders:
        accepted_per_room[sender.client.room] += sender.accepted
    return sum(accepted_per_room[index] * sum(1 for c in room if c.ready) for index, room in enumerate(rooms))


async def announce_spread(run: Run, clients: list[Client], seconds: float) -> None:
    """Each of ``clients`` sends its hello in turn, evenly over ``seconds``."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    for index, client in enumerate(clients):
        delay = began + index * seconds / len(clients) - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if not run.sending:
            return
        client.hello()


async def measure(
    run: Run,
    rooms: list[list[Client]],
    senders: list[Sender],
    typists: list[Typist],
    late_hellos: list[Client],
    reactors: list[Reactor],
) -> tuple[int, float]:
    """Send for ``--duration`` seconds (or ``--messages`` each), then wait for the deliveries to land.

    Returns the start time (ns) and the seconds spent waiting for the last deliveries.
    """
    options = run.options
    run.measuring = True
    run.sending = True
    started = monotonic_ns()
    tasks = [asyncio.ensure_future(typist.loop()) for typist in typists]
    tasks += [asyncio.ensure_future(reactor.loop()) for reactor in reactors]
    if late_hellos:
        tasks.append(asyncio.ensure_future(announce_spread(run, late_hellos, options.duration)))
    if options.rate is not None:
        tasks += [asyncio.ensure_future(sender.paced_loop(options.rate)) for sender in senders]
    else:
        for sender in senders:
            sender.fill_window()
    deadline = time.monotonic() + options.duration if options.duration else None
    while not all(sender.done() for sender in senders):
        if deadline is not None and time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.05)
    run.sending = False
    for task in tasks:
        task.cancel()
    drain_started = time.monotonic()
    last_progress, last_received = drain_started, -1
    while True:
        complete = (
            run.received >= expected_deliveries(rooms, senders)
            and not any(s.in_flight for s in senders)
            and run.reactions_received >= expected_reactions(rooms, reactors)
        )
        now = time.monotonic()
        received = run.received + run.reactions_received
        if received != last_received:
            last_progress, last_received = now, received
        if complete or now - last_progress > options.drain_idle:
            break
        await asyncio.sleep(0.05)
    run.measuring = False
    return started, time.monotonic() - drain_started


def percentile_ms(ordered: list[int], fraction: float) -> float | None:
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] / 1e6, 3)


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run_load(options: argparse.Namespace) -> dict[str, Any]:
    run = Run(options)
    pids: list[int] = options.server_pid
    rss_before = total_rss_kib(pids) if pids else None
    rooms = [[Client(run, room) for _ in range(options.clients)] for room in range(options.rooms)]
    senders: list[Sender] = []
    for room in rooms:
        for client in room[: options.senders]:
            client.sender = Sender(run, client, len(senders))
            senders.append(client.sender)
    clients = [client for room in rooms for client in room]
    typists, late_hellos = plan_signals(options, rooms)
    reactors = plan_reactors(options, rooms) if options.react_fraction else []

    connect_started = time.monotonic()
    failures = await connect_all(run, clients)
    connect_seconds = time.monotonic() - connect_started
    connected = sum(1 for c in clients if c.transport is not None)
    warm_started = time.monotonic()
    all_ready = await warm_up(run, rooms, options.warmup_timeout) if connected else False
    warmup_seconds = time.monotonic() - warm_started
    await asyncio.sleep(options.settle)
    rss_connected = total_rss_kib(pids) if pids else None

    server_cpu_before = total_cpu_seconds(pids) if pids else 0.0
    own_cpu_before = own_cpu_seconds()
    started_ns, drain_seconds = await measure(run, rooms, senders, typists, late_hellos, reactors)
    measured_seconds = (monotonic_ns() - started_ns) / 1e9
    server_cpu = (total_cpu_seconds(pids) - server_cpu_before) if pids else None
    own_cpu = own_cpu_seconds() - own_cpu_before
    rss_after = total_rss_kib(pids) if pids else None

    expected = expected_deliveries(rooms, senders)
    accepted = sum(sender.accepted for sender in senders)
    elapsed = max(run.last_delivery_ns - started_ns, 1) / 1e9 if run.received else None
    ordered = sorted(run.latencies_ns)
    deliveries = run.received + run.reactions_received  # message frames and reactions frames
    result: dict[str, Any] = {
        "clients": len(clients),
        "connected": connected,
        "joined": run.ready,
        "all_joined": all_ready,
        "connect_failures": dict(failures.most_common(5)),
        "connect_seconds": round(connect_seconds, 3),
        "warmup_seconds": round(warmup_seconds, 3),
        "sent": sum(sender.seq for sender in senders),
        "accepted": accepted,
        "errors": dict(run.errors),
        "close_codes": {str(code): count for code, count in run.close_codes.items()},
        "dropped": run.dropped_while_measuring,
        "gaps": run.gaps,
        "unrecognised_frames": run.other_frames,
        "deliveries_expected": expected,
        "deliveries_received": run.received,
        "lost": expected - run.received,
        "duplicated": run.duplicated,
        "out_of_order": run.out_of_order,
        "seconds": round(elapsed, 3) if elapsed else None,
        "drain_seconds": round(drain_seconds, 3),
        "deliveries_per_s": round(run.received / elapsed) if elapsed else None,
        "acked_per_s": round(accepted / elapsed) if elapsed else None,
        "latency_ms": {
            "p50": percentile_ms(ordered, 0.50),
            "p90": percentile_ms(ordered, 0.90),
            "p99": percentile_ms(ordered, 0.99),
            "max": round(ordered[-1] / 1e6, 3) if ordered else None,
        },
        "server_cpu_s": round(server_cpu, 3) if server_cpu is not None else None,
        "server_cpu_us_per_delivery": (
            round(server_cpu * 1e6 / deliveries, 3) if server_cpu is not None and deliveries else None
        ),
        "server_rss_kib": {"before": rss_before, "connected": rss_connected, "after": rss_after},
        "server_kib_per_connection": (
            round((rss_connected - rss_before) / connected, 2) if pids and connected else None  # type: ignore[operator]
        ),
        "loadgen_cpu_s": round(own_cpu, 3),
        "loadgen_cpu_us_per_delivery": round(own_cpu * 1e6 / deliveries, 3) if deliveries else None,
        "loadgen_loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
    }
    if {"presence", "typing"} & set(options.features.split(",")):
        result["signals"] = signal_figures(run, rooms, typists, connected, measured_seconds)
    if reactors:
        result["reactions"] = reaction_figures(run, rooms, reactors, options.duration or measured_seconds)
    for client in clients:
        if client.transport is not None:
            client.transport.disconnect()
    await asyncio.sleep(0.2)
    return result


def plan_signals(options: argparse.Namespace, rooms: list[list[Client]]) -> tuple[list[Typist], list[Client]]:
    """Give every client a handle (with ``--hello``), pick each room's typists; return the typists and
    the clients that announce themselves while measuring (``--hello spread``)."""
    typists: list[Typist] = []
    late: list[Client] = []
    if options.hello == "none":
        return typists, late
    per_room = round(options.clients * options.typing_fraction)
    for room_index, room in enumerate(rooms):
        for index, client in enumerate(room):
            client.handle = f"c{room_index * options.clients + index}"
            typing = index >= options.clients - per_room
            client.hello_on_connect = typing or options.hello == "connect"
            if typing:
                offset = (len(typists) % per_room) * options.typing_interval / per_room
                typists.append(Typist(client.run, client, offset, options.typing_interval))
            elif not client.hello_on_connect:
                late.append(client)
    random.Random(0).shuffle(late)  # so that new handles keep sorting among the first ones listed
    return typists, late


def signal_figures(
    run: Run, rooms: list[list[Client]], typists: list[Typist], connected: int, seconds: float
) -> dict[str, Any]:
    """Presence and typing frames received while measuring; typing frames expected if none was dropped
    (each reaches every other socket of the typist's room)."""
    room_sizes = [sum(1 for c in room if c.transport is not None) for room in rooms]
    expected = sum(typist.sent * (room_sizes[typist.client.room] - 1) for typist in typists)
    per_client_s = connected * seconds
    return {
        "typists": len(typists),
        "typing_sent": run.typing_sent,
        "typing_received": run.typing_frames,
        "typing_expected": expected,
        "presence_received": run.presence_frames,
        "seconds": round(seconds, 3),
        "presence_per_client_s": round(run.presence_frames / per_client_s, 3) if per_client_s else None,
        "typing_per_client_s": round(run.typing_frames / per_client_s, 3) if per_client_s else None,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.loadgen", description=__doc__.splitlines()[0])
    parser.add_argument("--url", action="append", required=True, help="ws://host:port of a server; repeat to spread")
    parser.add_argument("--rooms", type=int, default=1)
    parser.add_argument("--clients", type=int, default=10, help="clients per room")
    parser.add_argument("--senders", type=int, default=1, help="senders per room (the first clients of each room)")
    pacing = parser.add_mutually_exclusive_group()
    pacing.add_argument("--window", type=int, default=10, help="messages in flight per sender (default)")
    pacing.add_argument("--rate", type=float, help="messages per second per sender, instead of a window")
    parser.add_argument("--duration", type=float, default=0, help="seconds of sending (0: until --messages)")
    parser.add_argument("--messages", type=int, help="messages per sender")
    parser.add_argument("--server-pid", type=int, action="append", default=[], help="server process(es) to measure")
    parser.add_argument("--room-prefix", default="bench")
    parser.add_argument("--connect-concurrency", type=int, default=100)
    parser.add_argument(
        "--sources",
        type=int,
        default=SPREAD,
        help=f"spread clients over this many loopback source addresses from 127.0.0.2 (max {SPREAD}; 0: kernel's)",
    )
    parser.add_argument("--handshake-timeout", type=float, default=30)
    parser.add_argument("--warmup-timeout", type=float, default=60)
    parser.add_argument("--settle", type=float, default=0.5, help="pause after warm-up before reading RSS")
    parser.add_argument("--drain-idle", type=float, default=5, help="stop waiting after this long with no delivery")
    parser.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto")
    parser.add_argument("--features", default="", help="?features= on every socket URL, e.g. presence,typing")
    parser.add_argument(
        "--hello",
        choices=("none", "connect", "spread"),
        default="none",
        help="every client announces a handle: on connecting, or spread over the sending time (typists on connecting)",
    )
    parser.add_argument("--typing-fraction", type=float, default=0.0, help="share of each room's clients that type")
    parser.add_argument("--typing-interval", type=float, default=2.0, help="seconds between a typist's frames")
    parser.add_argument("--react-fraction", type=float, default=0.0, help="share of each room's clients that react")
    parser.add_argument("--react-interval", type=float, default=0.2, help="seconds between a reactor's frames")
    options = parser.parse_args(argv)
    if not options.duration and options.messages is None:
        options.messages = 0
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    raise_open_file_limit(options.rooms * options.clients + 1024)
    use_uvloop = options.loop == "uvloop"
    if options.loop == "auto":
        try:
            import uvloop

            use_uvloop = True
        except ImportError:
            use_uvloop = False
    if use_uvloop:
        import uvloop

        result = uvloop.run(run_load(options))
    else:
        result = asyncio.run(run_load(options))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

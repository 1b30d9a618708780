"""The benchmark's scenarios and the targets each one is judged by.

Every scenario runs the load generator against several servers in one run, so that each figure can be
read as a ratio to another measured minutes apart on the same machine. The sizes are chosen so that
the whole run takes a few minutes on two cores; ``quick`` sizes only check that everything works.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Result = dict[str, Any]
Results = dict[str, Result]


@dataclass(frozen=True)
class Target:
    what: str
    measured: str
    met: bool | None  # None: could not be judged (a server was skipped or failed)


@dataclass(frozen=True)
class Variant:
    """A row of a scenario that runs ``server`` under the scenario's load with ``load`` added to it."""

    server: str
    load: dict[str, Any]


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    servers: tuple[str, ...]  # rows: a server's name, or a key of ``variants``
    load: dict[str, Any]
    quick_load: dict[str, Any]
    targets: Callable[[Results], list[Target]]
    # Rounds per server, alternating between servers; the round with the median of ``median_of`` is kept.
    repeat: int = 1
    median_of: str = "server_cpu_us_per_delivery"
    variants: dict[str, Variant] = field(default_factory=dict)
    # "sockets": the load generator's clients (bench.loadgen); "search": a filled room searched over HTTP
    # (bench.search_corpus, bench.searchload).
    kind: str = "sockets"

    def server_of(self, row: str) -> str:
        variant = self.variants.get(row)
        return variant.server if variant is not None else row

    def load_of(self, row: str, quick: bool) -> dict[str, Any]:
        load = self.quick_load if quick else self.load
        variant = self.variants.get(row)
        return {**load, **variant.load} if variant is not None else load


def ok(result: Result | None) -> bool:
    return result is not None and "error" not in result and "skipped" not in result


def exact(result: Result) -> bool:
    return result["lost"] == 0 and result["duplicated"] == 0 and result["out_of_order"] == 0


def exact_target(name: str, results: Results) -> Target:
    result = results.get(name)
    if not ok(result):
        return Target(f"{name}: 0 lost, 0 duplicated, 0 out of order", "not run", None)
    assert result is not None
    measured = f"{result['lost']} / {result['duplicated']} / {result['out_of_order']}"
    return Target(f"{name}: 0 lost, 0 duplicated, 0 out of order", measured, exact(result))


def ratio_target(
    what: str,
    results: Results,
    name: str,
    other: str,
    key: Callable[[Result], float | None],
    at_most: float | None = None,
    at_least: float | None = None,
    unit: str = "",
) -> Target:
    first, second = results.get(name), results.get(other)
    if not (ok(first) and ok(second)):
        return Target(what, "not run", None)
    assert first is not None and second is not None
    mine, theirs = key(first), key(second)
    if mine is None or not theirs:
        return Target(what, "no data", None)
    ratio = mine / theirs
    met = (at_most is None or ratio <= at_most) and (at_least is None or ratio >= at_least)
    return Target(what, f"{mine:g}{unit} vs {theirs:g}{unit} = {ratio:.3f}x", met)


def cpu(result: Result) -> float | None:
    return result.get("server_cpu_us_per_delivery")


def p99(result: Result) -> float | None:
    return result["latency_ms"]["p99"]


def acked(result: Result) -> float | None:
    return result.get("acked_per_s")


def fanout_targets(results: Results) -> list[Target]:
    return [
        ratio_target(
            "rooms CPU per delivery <= 0.1x baseline", results, "rooms", "baseline", cpu, at_most=0.1, unit=" us"
        ),
        ratio_target("rooms p99 latency <= 0.1x baseline", results, "rooms", "baseline", p99, at_most=0.1, unit=" ms"),
        exact_target("rooms", results),
    ]


def presence_targets(results: Results) -> list[Target]:
    return [
        ratio_target(
            "rooms+presence CPU per delivery <= 1.2x plain fan-out (rooms)",
            results,
            "rooms+presence",
            "rooms",
            cpu,
            at_most=1.2,
            unit=" us",
        ),
        exact_target("rooms+presence", results),
    ]


def chatty_targets(results: Results) -> list[Target]:
    rooms = results.get("rooms")
    if ok(rooms):
        assert rooms is not None
        latency = Target("rooms p99 < 5 ms", f"{p99(rooms)} ms", (p99(rooms) or 0) < 5)
        lost = Target("rooms 0 lost", str(rooms["lost"]), rooms["lost"] == 0)
    else:
        latency, lost = Target("rooms p99 < 5 ms", "not run", None), Target("rooms 0 lost", "not run", None)
    return [
        latency,
        ratio_target("rooms CPU per delivery <= baseline", results, "rooms", "baseline", cpu, at_most=1.0, unit=" us"),
        lost,
    ]


def idle_targets(results: Results) -> list[Target]:
    return [
        ratio_target(
            "rooms memory per connection within 5% of baseline",
            results,
            "rooms",
            "baseline",
            lambda r: r.get("server_kib_per_connection"),
            at_most=1.05,
            unit=" KiB",
        ),
    ]


def big_targets(results: Results) -> list[Target]:
    targets = []
    for name in ("rooms", "baseline"):
        result = results.get(name)
        what = f"{name}: 10,000 clients connect and each receives every broadcast"
        if not ok(result):
            targets.append(Target(what, "not run", None))
            continue
        assert result is not None
        measured = (
            f"{result['joined']}/{result['clients']} joined in {result['connect_seconds']:g}s, "
            f"{result['deliveries_received']}/{result['deliveries_expected']} received, "
            f"RSS {result['server_rss_kib']['connected'] / 1024:.0f} MiB"
        )
        targets.append(Target(what, measured, result["joined"] == result["clients"] == 10_000 and exact(result)))
    return targets


def backend_targets(results: Results) -> list[Target]:
    return [
        ratio_target(
            f"{name} CPU per delivery <= 2x rooms (memory)", results, name, "rooms", cpu, at_most=2.0, unit=" us"
        )
        for name in ("rooms-sqlite", "rooms-postgresql", "rooms-redis")
    ] + [exact_target(name, results) for name in ("rooms-sqlite", "rooms-postgresql", "rooms-redis")]


def echo_targets(results: Results) -> list[Target]:
    sqlite = results.get("rooms-sqlite")
    if ok(sqlite):
        assert sqlite is not None
        latency = Target("rooms-sqlite p99 send-to-echo < 50 ms", f"{p99(sqlite)} ms", (p99(sqlite) or 0) < 50)
    else:
        latency = Target("rooms-sqlite p99 send-to-echo < 50 ms", "not run", None)
    return [
        ratio_target("rooms-sqlite acked/s >= 0.7x memory", results, "rooms-sqlite", "rooms", acked, at_least=0.7),
        ratio_target(
            "rooms-sqlite acked/s >= 2.5x commit-per-message baseline",
            results,
            "rooms-sqlite",
            "baseline-sqlite-commit-each",
            acked,
            at_least=2.5,
        ),
        latency,
        ratio_target(
            "rooms-postgresql acked/s >= 0.5x memory", results, "rooms-postgresql", "rooms", acked, at_least=0.5
        ),
        ratio_target("rooms-mariadb acked/s >= 0.5x memory", results, "rooms-mariadb", "rooms", acked, at_least=0.5),
    ] + [exact_target(name, results) for name in ("rooms-sqlite", "rooms-postgresql", "rooms-mariadb")]


def redis_targets(results: Results) -> list[Target]:
    return [
        exact_target("rooms-redis-x2", results),
        ratio_target(
            "rooms-redis-x2 deliveries/s vs one memory process (reported, no target)",
            results,
            "rooms-redis-x2",
            "rooms",
            lambda r: r.get("deliveries_per_s"),
        ),
    ]


def cluster_targets(results: Results) -> list[Target]:
    return [
        ratio_target(
            "rooms-redis-cluster-x2 CPU per delivery <= 1.3x one Redis (rooms-redis-x2)",
            results,
            "rooms-redis-cluster-x2",
            "rooms-redis-x2",
            cpu,
            at_most=1.3,
            unit=" us",
        ),
        exact_target("rooms-redis-cluster-x2", results),
        ratio_target(
            "rooms-redis-cluster-x2 acked/s vs one Redis (reported, no target)",
            results,
            "rooms-redis-cluster-x2",
            "rooms-redis-x2",
            acked,
        ),
    ]


SEARCH_P99_MS = 50


def search_targets(results: Results) -> list[Target]:
    targets = []
    for name in ("rooms-sqlite", "rooms-postgresql"):
        what = f"{name}: search p99 <= {SEARCH_P99_MS} ms, over every query"
        result = results.get(name)
        if not ok(result):
            targets.append(Target(what, "not run", None))
            continue
        assert result is not None
        measured = result["overall_ms"]["p99"]
        targets.append(Target(what, f"{measured:g} ms", measured <= SEARCH_P99_MS))
    return targets


FANOUT = {"rooms": 1, "clients": 500, "senders": 5, "window": 10}
# Every client asks for presence and typing and announces a handle (spread over the measurement, so the
# room's presence keeps changing), 10% of them type every 2 s (see bench.loadgen): 2.05 s apart as sent,
# because rooms drops a socket's typing frame that it reads within 2 s of the one before, and its reads
# move by a millisecond or two under this load (2.000 s apart, a trial run relayed 94% of them).
PRESENCE_AND_TYPING = {
    "features": "presence,typing",
    "hello": "spread",
    "typing-fraction": 0.1,
    "typing-interval": 2.05,
}

ECHO = {"rooms": 10, "clients": 5, "senders": 5, "window": 10}

SCENARIOS: list[Scenario] = [
    Scenario(
        "fanout",
        "Fan-out: 1 room, 500 clients, 5 senders, window of 10 in flight each",
        ("baseline", "rooms", "baseline+uvloop", "rooms+uvloop"),
        {**FANOUT, "duration": 8},
        {**FANOUT, "duration": 2},
        fanout_targets,
    ),
    Scenario(
        "fanout-presence",
        "Fan-out with presence and typing: 1 room, 500 clients, 5 senders; every client announces a handle, "
        "10% type every 2 s",
        ("rooms", "rooms+presence"),
        {**FANOUT, "duration": 6},
        {**FANOUT, "duration": 2},
        presence_targets,
        # Plain and with presence alternate, three rounds each: the two are compared within one run.
        repeat=3,
        variants={"rooms+presence": Variant("rooms", PRESENCE_AND_TYPING)},
    ),
    Scenario(
        "chatty",
        "Chatty: 100 rooms x 10 clients, 2 senders per room at 5 msg/s",
        ("baseline", "rooms", "baseline+uvloop", "rooms+uvloop"),
        {"rooms": 100, "clients": 10, "senders": 2, "rate": 5, "duration": 10},
        {"rooms": 100, "clients": 10, "senders": 2, "rate": 5, "duration": 3},
        chatty_targets,
    ),
    Scenario(
        "idle",
        "Idle: 2,000 connections held (20 rooms x 100), no traffic",
        ("baseline", "rooms", "rooms+uvloop"),
        {"rooms": 20, "clients": 100, "senders": 0, "settle": 2},
        {"rooms": 20, "clients": 100, "senders": 0, "settle": 1},
        idle_targets,
        # RSS growth per connection moves by about 1 KiB from run to run (allocator state).
        repeat=5,
        median_of="server_kib_per_connection",
    ),
    Scenario(
        "big",
        "Big: 10,000 connections in one room on one process, 3 broadcasts",
        ("baseline", "rooms"),
        {"rooms": 1, "clients": 10_000, "senders": 1, "window": 1, "messages": 3, "drain-idle": 20},
        {"rooms": 1, "clients": 10_000, "senders": 1, "window": 1, "messages": 1, "drain-idle": 20},
        big_targets,
    ),
    Scenario(
        "fanout-backends",
        "Fan-out on the persistent backends (as fan-out)",
        ("baseline", "rooms", "rooms-sqlite", "rooms-postgresql", "rooms-redis"),
        {**FANOUT, "duration": 6},
        {**FANOUT, "duration": 2},
        backend_targets,
    ),
    Scenario(
        "echo",
        "Acknowledged messages: 10 rooms x 5 clients, all 50 send with a window of 10",
        ("rooms", "rooms-sqlite", "rooms-postgresql", "rooms-mariadb", "baseline-sqlite-commit-each"),
        {**ECHO, "duration": 6},
        {**ECHO, "duration": 2},
        echo_targets,
    ),
    Scenario(
        "redis-2proc",
        "Two processes on one Redis: 1 room, 500 clients split across them, 5 senders",
        ("rooms", "rooms-redis-x2"),
        {**FANOUT, "duration": 6},
        {**FANOUT, "duration": 2},
        redis_targets,
    ),
    # One Redis and the cluster alternate, three rounds each: the two are compared within one run. The
    # cluster's stores wait for one replica (WAIT), one Redis's for none.
    Scenario(
        "redis-cluster-2proc",
        "Two processes on a Redis Cluster (3 masters, 3 replicas) against one Redis: fan-out as redis-2proc",
        ("rooms-redis-x2", "rooms-redis-cluster-x2"),
        {**FANOUT, "duration": 6},
        {**FANOUT, "duration": 2},
        cluster_targets,
        repeat=3,
    ),
    Scenario(
        "redis-cluster-echo",
        "Two processes on a Redis Cluster against one Redis: acknowledged messages as echo "
        "(10 rooms x 5 clients, all 50 send with a window of 10)",
        ("rooms-redis-x2", "rooms-redis-cluster-x2"),
        {**ECHO, "duration": 6},
        {**ECHO, "duration": 2},
        cluster_targets,
        repeat=3,
    ),
    Scenario(
        "search",
        "Search: one room of 100,000 messages, six kinds of query asked one after another from one client",
        ("rooms-sqlite", "rooms-postgresql"),
        {"messages": 100_000, "rounds": 200},
        {"messages": 2_000, "rounds": 10},
        search_targets,
        kind="search",
    ),
]

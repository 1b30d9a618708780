"""The targets each benchmark scenario is judged by, and the figures of a result they read.

A target is met, missed, or not judged (a server was skipped or failed); most compare one row's figure
with another's measured in the same run, as a ratio.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Result = dict[str, Any]
Results = dict[str, Result]


@dataclass(frozen=True)
class Target:
    what: str
    measured: str
    met: bool | None  # None: could not be judged (a server was skipped or failed)


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


def reactions_targets(results: Results) -> list[Target]:
    targets = []
    for plain in ("rooms", "rooms-sqlite"):
        name = f"{plain}+reactions"
        targets.append(
            ratio_target(
                f"{name} CPU per delivery <= 1.3x plain fan-out ({plain})",
                results,
                name,
                plain,
                cpu,
                at_most=1.3,
                unit=" us",
            )
        )
        targets.append(exact_target(name, results))
        targets.append(reactions_target(name, results))
    return targets


def reactions_target(name: str, results: Results) -> Target:
    what = f"{name}: every reactions frame received, at increasing per client"
    result = results.get(name)
    if not ok(result) or "reactions" not in (result or {}):
        return Target(what, "not run", None)
    assert result is not None
    reactions = result["reactions"]
    measured = (
        f"{reactions['frames_received']}/{reactions['frames_expected']} received, "
        f"{reactions['at_not_increasing']} not increasing"
    )
    met = reactions["frames_received"] == reactions["frames_expected"] > 0 and reactions["at_not_increasing"] == 0
    return Target(what, measured, met)


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


def bigroom_targets(results: Results) -> list[Target]:
    """rooms against Node.js ws: joining, holding and reaching a big room, and memory given back after it."""
    rooms = results.get("rooms")
    measured = next((result for result in results.values() if ok(result)), None)
    checkpoint = f"{measured['checkpoint']:,}" if measured else "the checkpoint"
    everyone = f"{measured['clients']:,}" if measured else "all"
    against_node: list[tuple[str, Callable[[Result], float | None], str]] = [
        ("rooms CPU per join <= node-ws", lambda r: r.get("join_cpu_us"), " us"),
        (
            f"rooms KiB per idle connection at {checkpoint} <= node-ws",
            lambda r: r.get("kib_per_connection_checkpoint"),
            " KiB",
        ),
        (f"rooms KiB per idle connection at {everyone} <= node-ws", lambda r: r.get("kib_per_connection"), " KiB"),
        ("rooms one message to all, p99 below node-ws", lambda r: r["one_message"]["latency_ms"]["p99"], " ms"),
        ("rooms burst to all, p99 below node-ws", lambda r: r["burst"]["latency_ms"]["p99"], " ms"),
    ]
    targets = [
        *(
            ratio_target(what, results, "rooms", "node-ws", key, at_most=1.0, unit=unit)
            for what, key, unit in against_node
        ),
        exact_target("rooms", results),
    ]
    if not ok(rooms):
        return [*targets, *(Target(what, "not run", None) for what in LEFT_TARGETS)]
    assert rooms is not None
    left = rooms["left_percent_of_empty"]
    rounds = " -> ".join(f"{r['rss_left_kib'] / 1024:.0f}" for r in rooms["join_leave_rounds"])
    growth = rooms["left_growth_percent"]
    targets.append(Target(LEFT_TARGETS[0], f"{left:g}% of the empty process", left <= 200))
    targets.append(Target(LEFT_TARGETS[1], f"{rounds} MiB: {growth:+g}%", growth <= LEFT_GROWTH_PERCENT))
    return targets


CROWD_P99_MS = 2_000
CROWD_TARGETS = ("every client joined", f"one message to all, p99 <= {CROWD_P99_MS / 1000:g} s")


def crowd_targets(results: Results) -> list[Target]:
    """For every row: every client in the room, one message reaching them all in time, none lost."""
    targets = []
    for name, result in results.items():
        if not ok(result):
            targets += [Target(f"{name}: {what}", "not run", None) for what in CROWD_TARGETS]
            targets.append(exact_target(name, results))
            continue
        p99_ms = result["one_message"]["latency_ms"]["p99"]
        joined = f"{result['joined']:,}/{result['clients']:,} in {result['join_seconds']:g} s"
        targets.append(Target(f"{name}: {CROWD_TARGETS[0]}", joined, result["joined"] == result["clients"]))
        if p99_ms is None:
            targets.append(Target(f"{name}: {CROWD_TARGETS[1]}", "no delivery", False))
        else:
            targets.append(Target(f"{name}: {CROWD_TARGETS[1]}", f"{p99_ms:g} ms", p99_ms <= CROWD_P99_MS))
        targets.append(exact_target(name, results))
    return targets


# Allocator noise between rounds: RSS after leaving may move by a percent or so with nothing kept.
LEFT_GROWTH_PERCENT = 2
LEFT_TARGETS = (
    "rooms RSS after all left <= 2x the empty process",
    f"rooms RSS after all left grows at most {LEFT_GROWTH_PERCENT}% from the first round to the last",
)


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

"""The benchmark's scenarios (the targets each one is judged by are ``bench.targets``').

Every scenario runs the load generator against several servers in one run, so that each figure can be
read as a ratio to another measured minutes apart on the same machine. The sizes are chosen so that
the whole run takes a few minutes on two cores; ``quick`` sizes only check that everything works.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.targets import (
    Results,
    Target,
    backend_targets,
    big_targets,
    bigroom_targets,
    chatty_targets,
    cluster_targets,
    crowd_targets,
    echo_targets,
    fanout_targets,
    idle_targets,
    presence_targets,
    reactions_targets,
    redis_targets,
    search_targets,
)


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
    # (bench.search_corpus, bench.searchload); "bigroom": one room joined, reached and left (bench.bigroom);
    # "crowd": one room over several processes, joined and reached (bench.crowd).
    kind: str = "sockets"
    timeout: int = 300  # seconds one row's client process may take

    def server_of(self, row: str) -> str:
        variant = self.variants.get(row)
        return variant.server if variant is not None else row

    def load_of(self, row: str, quick: bool) -> dict[str, Any]:
        load = self.quick_load if quick else self.load
        variant = self.variants.get(row)
        return {**load, **variant.load} if variant is not None else load


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

# Every client asks for edits and reactions; the last 10% (50 of 500) announce a handle and each toggles a
# 👍 on the latest message it received every 0.2 s (see bench.reactions): 250 reactions a second, each a
# reactions frame to all 500 sockets.
REACTIONS = {"features": "edits,reactions", "react-fraction": 0.1, "react-interval": 0.2}

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
        "reactions",
        "Fan-out with reactions: 1 room, 500 clients, 5 senders; 50 clients toggle a reaction every 0.2 s",
        ("rooms", "rooms+reactions", "rooms-sqlite", "rooms-sqlite+reactions"),
        {**FANOUT, "duration": 8},
        {**FANOUT, "duration": 2},
        reactions_targets,
        variants={
            "rooms+reactions": Variant("rooms", REACTIONS),
            "rooms-sqlite+reactions": Variant("rooms-sqlite", REACTIONS),
        },
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
        "bigroom",
        "A big room: 19,000 clients join one room on one process and stay idle, nine messages one at a time and "
        "a burst of 10 reach them all, all leave; three rounds of joining and leaving",
        ("rooms", "baseline", "node-ws"),
        {"clients": 19_000, "checkpoint": 2_000, "singles": 9, "burst": 10, "rounds": 3},
        {"clients": 2_000, "checkpoint": 500, "singles": 3, "burst": 10, "rounds": 2},
        bigroom_targets,
        kind="bigroom",
    ),
    # Six processes hold 16,667 each, within a process's 20,000 descriptors; one client process per server.
    Scenario(
        "hundred-thousand",
        "100,000 in one room on six processes: six rooms processes on one Redis, 100,000 clients join one room "
        "(16,667 each), one message reaches them all",
        ("rooms-redis-x6", "rooms-redis-x6+uvloop"),
        {"clients": 100_000},
        {"clients": 3_000},
        crowd_targets,
        kind="crowd",
        timeout=600,
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

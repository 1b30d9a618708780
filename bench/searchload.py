"""The search scenario's client: a fixed set of searches asked of one room, one after another, on one
kept-alive HTTP connection, each timed from sending the request to reading the whole answer.

The queries (words from ``bench.search_corpus``, so they match what the fill stored):

* ``rare``: a word stored a handful of times; ``common``: one in about 2 of every 3 messages;
* ``two-words``: the common word and a middling one (in about 1 of every 25), both whole;
* ``prefix``: three letters that start many words (the query's last word is a prefix);
* ``nothing``: a word no message holds;
* ``paging``: the middling word's pages read one after another, each ``before`` the oldest id of the
  page before, from the newest back to the oldest and then again.

One warm-up round of every query, then ``--rounds`` rounds, each asking every query once in turn (so all
see the same conditions). Prints one JSON object: per query and over all, the latency in ms (p50, p99,
max), and the server's CPU per search.

    python -m bench.searchload --url http://127.0.0.1:PORT --room LABEL --rounds 200 --server-pid PID
"""

from __future__ import annotations

import argparse
import http.client
import json
import time
from typing import Any
from urllib.parse import quote, urlsplit

from bench.procstat import cpu_seconds
from bench.search_corpus import Corpus

LIMIT = 20


class SearchClient:
    def __init__(self, url: str, room: str) -> None:
        parts = urlsplit(url)
        self._connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=30)
        self._path = f"/api/rooms/{quote(room, safe='')}/search"

    def search(self, text: str, before: str | None = None) -> tuple[float, dict[str, Any]]:
        """Seconds the search took, and its answer."""
        path = f"{self._path}?q={quote(text, safe='')}&limit={LIMIT}"
        if before is not None:
            path += f"&before={quote(before, safe='')}"
        began = time.perf_counter()
        self._connection.request("GET", path)
        response = self._connection.getresponse()
        body = response.read()
        took = time.perf_counter() - began
        if response.status != 200:
            raise SystemExit(f"search {path} answered {response.status}: {body[:200]!r}")
        return took, json.loads(body)


class Pager:
    """The ``paging`` query: the next page of the middling word each time it is asked."""

    def __init__(self, client: SearchClient, word: str) -> None:
        self._client, self._word = client, word
        self._before: str | None = None
        self.pages_read = 0

    def next_page(self) -> tuple[float, dict[str, Any]]:
        took, answer = self._client.search(self._word + " ", self._before)
        self.pages_read += 1
        messages = answer["messages"]
        self._before = messages[-1]["id"] if answer["has_more"] and messages else None
        return took, answer


def percentiles(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)

    def ms(value: float) -> float:
        return round(value * 1000, 3)

    return {
        "p50": ms(ordered[(len(ordered) - 1) // 2]),
        "p99": ms(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]),
        "max": ms(ordered[-1]),
    }


def run(url: str, room: str, rounds: int, server_pid: int | None) -> dict[str, Any]:
    client = SearchClient(url, room)
    words = Corpus().query_words()
    pager = Pager(client, words["middling"])
    queries = {
        "rare": lambda: client.search(words["rare"] + " "),
        "common": lambda: client.search(words["common"] + " "),
        "two-words": lambda: client.search(f"{words['common']} {words['middling']} "),
        "prefix": lambda: client.search(words["prefix"]),
        "nothing": lambda: client.search(words["missing"] + " "),
        "paging": pager.next_page,
    }
    found = {name: len(ask()[1]["messages"]) for name, ask in queries.items()}  # the warm-up round
    timings: dict[str, list[float]] = {name: [] for name in queries}
    cpu_before = None if server_pid is None else cpu_seconds(server_pid)
    for _ in range(rounds):
        for name, ask in queries.items():
            timings[name].append(ask()[0])
    searches = rounds * len(queries)
    server_cpu = None if server_pid is None or cpu_before is None else cpu_seconds(server_pid) - cpu_before
    return {
        "room": room,
        "query_rounds": rounds,
        "searches": searches,
        "limit": LIMIT,
        "words": words,
        "first_page_matches": found,
        "paging_pages_read": pager.pages_read,
        "latency_ms": {name: percentiles(seconds) for name, seconds in timings.items()},
        "overall_ms": percentiles([took for seconds in timings.values() for took in seconds]),
        "server_cpu_ms_per_search": None if server_cpu is None else round(server_cpu / searches * 1000, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.searchload", description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the server's HTTP address, http://127.0.0.1:PORT")
    parser.add_argument("--room", required=True)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--server-pid", type=int)
    args = parser.parse_args()
    print(json.dumps(run(args.url, args.room, args.rounds, args.server_pid)))


if __name__ == "__main__":
    main()

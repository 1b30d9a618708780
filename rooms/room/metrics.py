"""Prometheus metrics, on a registry of the application's own so that several apps (tests, benchmarks)
can live in one process."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.metrics_core import HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

# The *_created samples only double the exposition; scrapers do not need them.
disable_created_metrics()  # type: ignore[no-untyped-call]


# A store or a request takes a millisecond or two when all is well: the default buckets start at 5 ms.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class LoopHistogram:
    """A histogram without labels, observed on the event loop's thread alone: prometheus_client's takes a
    lock for its sum and another for its bucket at every observation, which every message's store pays
    on the loop; this one counts in a list, and builds the same samples when it is scraped."""

    def __init__(self, name: str, documentation: str, buckets: Iterable[float], registry: CollectorRegistry) -> None:
        self._name = name
        self._documentation = documentation
        self._bounds = [*buckets, math.inf]
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0
        registry.register(self)

    def observe(self, amount: float) -> None:
        self._counts[bisect_left(self._bounds, amount)] += 1
        self._sum += amount

    def describe(self) -> list[Metric]:
        return [HistogramMetricFamily(self._name, self._documentation)]

    def collect(self) -> Iterator[Metric]:
        cumulative = 0
        buckets = []
        for bound, count in zip(self._bounds, self._counts, strict=True):
            cumulative += count
            buckets.append((floatToGoString(bound), cumulative))  # type: ignore[no-untyped-call]
        yield HistogramMetricFamily(self._name, self._documentation, buckets=buckets, sum_value=self._sum)


class RoomsMetrics:
    def __init__(self, extra_collectors: Iterable[Any] = (), version: str = "unknown") -> None:
        self.registry = CollectorRegistry()
        # The process's memory, CPU time and file descriptors (process_*), read from /proc at each scrape.
        ProcessCollector(registry=self.registry)
        for collector in extra_collectors:
            self.registry.register(collector)
        self.messages_stored = Counter(
            "rooms_messages_stored", "Messages stored by this process", registry=self.registry
        )
        self.messages_deduplicated = Counter(
            "rooms_messages_deduplicated",
            "Resent messages answered from history instead of being stored again",
            registry=self.registry,
        )
        self.deliveries = Counter(
            "rooms_deliveries", "Messages written to this process's sockets", registry=self.registry
        )
        self.client_errors = Counter(
            "rooms_client_errors", "Error replies sent to clients, by code", ["code"], registry=self.registry
        )
        self.slow_clients_closed = Counter(
            "rooms_slow_clients_closed",
            "Sockets closed with 1013 for falling behind the send buffer",
            registry=self.registry,
        )
        self.rooms_expired = Counter(
            "rooms_rooms_expired",
            "Rooms removed with their history for having no message for history.expire_after_days",
            registry=self.registry,
        )
        self.connections_refused = Counter(
            "rooms_connections_refused",
            "Handshakes refused with 429: their address held limits.connections_per_address sockets",
            registry=self.registry,
        )
        self.presence_frames = Counter(
            "rooms_presence_frames", "Presence frames written to this process's sockets", registry=self.registry
        )
        self.typing_relayed = Counter(
            "rooms_typing_relayed",
            "Typing signals from this process's sockets relayed to their rooms (one per 2 s per socket at most)",
            registry=self.registry,
        )
        self.connections = Gauge("rooms_connections", "Open WebSockets on this process", registry=self.registry)
        self.active_rooms = Gauge(
            "rooms_active_rooms", "Rooms with at least one socket on this process", registry=self.registry
        )

        self.build_info = Info("rooms_build", "The rooms release this process runs", registry=self.registry)
        self.build_info.info({"version": version})
        self.backend_up = Gauge(
            "rooms_backend_up",
            "1 while the backend answers and takes writes, as /healthz last saw it (each scrape looks again), else 0",
            registry=self.registry,
        )
        self.store_seconds = LoopHistogram(
            "rooms_store_duration_seconds",
            "How long the backend took to store a message (stored, refused or failed)",
            LATENCY_BUCKETS,
            self.registry,
        )
        self.http_requests = Histogram(
            "rooms_http_request_duration_seconds",
            "HTTP requests answered, by route pattern (never the path), method and status, and how long each took",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

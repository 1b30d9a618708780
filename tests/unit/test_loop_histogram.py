"""The store's histogram, counted without locks, reads on /metrics exactly as prometheus_client's would."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from rooms.room.metrics import LATENCY_BUCKETS, LoopHistogram

NAME = "rooms_store_duration_seconds"
HELP = "How long the backend took to store a message (stored, refused or failed)"


def test_loop_histogram_exposes_what_prometheus_clients_histogram_does() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    loop_histogram = LoopHistogram(NAME, HELP, LATENCY_BUCKETS, ours)
    histogram = Histogram(NAME, HELP, buckets=LATENCY_BUCKETS, registry=theirs)
    assert generate_latest(ours) == generate_latest(theirs)
    # On each bound, just past it, between bounds, past the last one and nothing at all.
    for seconds in (0.0, 0.001, 0.0010001, 0.0025, 0.003, 0.07, 1.0, 10.0, 10.5, 3600.0):
        loop_histogram.observe(seconds)
        histogram.observe(seconds)
    assert generate_latest(ours) == generate_latest(theirs)


def test_loop_histogram_name_is_taken_once_per_registry() -> None:
    registry = CollectorRegistry()
    LoopHistogram(NAME, HELP, LATENCY_BUCKETS, registry)
    with pytest.raises(ValueError, match=NAME):
        Histogram(NAME, HELP, buckets=LATENCY_BUCKETS, registry=registry)

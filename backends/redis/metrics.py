"""The Redis backend's Prometheus collector: totals every process shares, and this process's pub/sub health."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from backends.redis.subscriber import Subscriber


class ClusterCounters:
    """Prometheus collector: totals of every process sharing this Redis (as of the last background
    refresh, every ``ping_interval`` seconds), and this process's pub/sub health."""

    def __init__(self, subscriber: Subscriber) -> None:
        self.totals: dict[str, str] = {}
        self._subscriber = subscriber

    def describe(self) -> Iterator[Metric]:
        return self.collect()

    def collect(self) -> Iterator[Metric]:
        for name, field, text in (
            ("rooms_cluster_messages_stored", "stored", "Messages stored by every process on this Redis"),
            ("rooms_cluster_messages_deduplicated", "deduplicated", "Resent messages every process answered"),
        ):
            yield CounterMetricFamily(name, text, value=int(self.totals.get(field, 0)))
        stats = self._subscriber.stats
        live = 1.0 if self._subscriber.is_live else 0.0
        yield GaugeMetricFamily("rooms_redis_pubsub_up", "1 while the pub/sub connection is live", value=live)
        for name, value, text in (
            ("rooms_redis_pubsub_sessions_lost", stats.sessions_lost, "Pub/sub connections lost and replaced"),
            ("rooms_redis_caught_up_messages", stats.caught_up, "Messages read from streams on (re)subscribing"),
            ("rooms_redis_gaps", stats.gaps, "Rooms told of a gap (pruned past, or Redis lost its data)"),
            ("rooms_redis_resets", stats.resets, "Times Redis came back without its data"),
        ):
            yield CounterMetricFamily(name, text, value=value)

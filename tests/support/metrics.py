"""What an operator scrapes from /metrics, read in the test's process: the app's own metrics, and those a
backend adds (``Backend.metrics_collectors``)."""

from __future__ import annotations

from backends.base import Backend
from rooms.web.app import RoomsApplication


def app_sample(app: RoomsApplication, name: str, **labels: str) -> float:
    """A sample of the app's /metrics by its exposed name (a counter's ends in ``_total``); 0 if none yet."""
    return app.hub.metrics.registry.get_sample_value(name, labels) or 0.0


def backend_sample(backend: Backend, name: str) -> float:
    """A sample the backend adds to /metrics, by its exposed name (a counter's ends in ``_total``)."""
    for collector in backend.metrics_collectors():
        for family in collector.collect():
            for sample in family.samples:
                if sample.name == name:
                    return float(sample.value)
    raise AssertionError(f"the {backend.kind} backend exposes no {name}")

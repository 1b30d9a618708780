"""/metrics after real requests, a real store and a real socket: HTTP requests by route pattern (never the
path), stores timed, the build, the backend's health and the process; and every metric the Grafana
dashboard and the alert rules in docs/ query is one rooms exports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from rooms.service.version import rooms_version
from tests.support.clients import connect, receive_json, send_json
from tests.support.promql import exported_names, metric_names

DOCS = Path(__file__).resolve().parents[2] / "docs"
# What Prometheus itself records of every scrape: the alert that rooms is down can only read that.
RECORDED_BY_PROMETHEUS = {"up"}


async def fetch(http_client, port: int, path: str, **options):
    return await http_client.fetch(f"http://127.0.0.1:{port}{path}", raise_error=False, **options)


async def scrape(http_client, port: int) -> str:
    response = await fetch(http_client, port, "/metrics")
    assert response.code == 200
    return response.body.decode()


def samples(exposition: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """``name``'s samples, by their labels."""
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == name
    }


async def use_everything(http_client, port: int) -> None:
    """A request of each kind, a store through the API and a socket that sends, hears and closes."""
    for room in ("lobby", "kitchen"):
        assert (await fetch(http_client, port, f"/api/rooms/{room}/messages")).code == 200
    posted = await fetch(
        http_client,
        port,
        "/api/rooms/lobby/messages",
        method="POST",
        body=json.dumps({"handle": "ann", "message": "hi"}),
        headers={"Content-Type": "application/json"},
    )
    assert posted.code == 201
    assert (await fetch(http_client, port, "/no/such/page")).code == 404
    ws = await connect(port, "lobby")
    await send_json(ws, {"handle": "bob", "message": "hello"})
    assert (await receive_json(ws))["message"] == "hello"
    ws.close()


@pytest.mark.gen_test
async def test_http_requests_are_counted_by_route_pattern_method_and_status(http_server, http_port, http_client):
    await use_everything(http_client, http_port)
    unknown = await fetch(
        http_client, http_port, "/api/rooms/lobby/messages", method="BREW", allow_nonstandard_methods=True
    )
    assert unknown.code == 405
    exposition = await scrape(http_client, http_port)
    counts = samples(exposition, "rooms_http_request_duration_seconds_count")
    messages = "/api/rooms/{label}/messages"
    assert counts[(("method", "GET"), ("route", messages), ("status", "200"))] == 2
    assert counts[(("method", "POST"), ("route", messages), ("status", "201"))] == 1
    assert counts[(("method", "(other)"), ("route", messages), ("status", "405"))] == 1
    assert counts[(("method", "GET"), ("route", "(none)"), ("status", "404"))] == 1
    assert counts[(("method", "GET"), ("route", "/chat/{label}/"), ("status", "101"))] == 1
    # Never a path: no room, no page a client made up.
    labels = {value for series in counts for _, value in series}
    assert not any(word in value for value in labels for word in ("lobby", "kitchen", "such", "BREW"))
    buckets = samples(exposition, "rooms_http_request_duration_seconds_bucket")
    assert buckets[(("le", "+Inf"), ("method", "GET"), ("route", messages), ("status", "200"))] == 2


@pytest.mark.gen_test
async def test_the_series_of_a_sockets_handshake_is_there_before_the_first_socket(http_server, http_port, http_client):
    # Made at start, not at the first join: made during a crowd's joins, it would outlive them among the
    # crowd's memory (docs/benchmarks.md, "What survives a crowd").
    exposition = await scrape(http_client, http_port)
    counts = samples(exposition, "rooms_http_request_duration_seconds_count")
    assert counts[(("method", "GET"), ("route", "/chat/{label}/"), ("status", "101"))] == 0
    ws = await connect(http_port, "lobby")
    ws.close()
    counts = samples(await scrape(http_client, http_port), "rooms_http_request_duration_seconds_count")
    assert counts[(("method", "GET"), ("route", "/chat/{label}/"), ("status", "101"))] == 1


@pytest.mark.gen_test
async def test_stores_are_timed(http_server, http_port, http_client):
    await use_everything(http_client, http_port)  # two stores: the API's and the socket's
    exposition = await scrape(http_client, http_port)
    assert samples(exposition, "rooms_store_duration_seconds_count") == {(): 2}
    assert samples(exposition, "rooms_store_duration_seconds_bucket")[(("le", "+Inf"),)] == 2
    assert samples(exposition, "rooms_store_duration_seconds_sum")[()] > 0


@pytest.mark.gen_test
async def test_build_backend_and_process(http_server, http_port, http_client):
    exposition = await scrape(http_client, http_port)
    assert samples(exposition, "rooms_build_info") == {(("version", rooms_version()),): 1}
    assert rooms_version() != "unknown"  # a checkout under git, or an installed package
    assert samples(exposition, "rooms_backend_up") == {(): 1}
    (memory,) = samples(exposition, "process_resident_memory_bytes").values()
    (open_fds,) = samples(exposition, "process_open_fds").values()
    (max_fds,) = samples(exposition, "process_max_fds").values()
    (cpu,) = samples(exposition, "process_cpu_seconds_total").values()
    assert memory > 1 << 20 and 0 < open_fds < max_fds and cpu > 0


@pytest.mark.gen_test
async def test_the_metrics_of_before_are_all_still_there(http_server, http_port, http_client):
    names = exported_names(await scrape(http_client, http_port))
    for kept in (
        "rooms_messages_stored_total",
        "rooms_messages_deduplicated_total",
        "rooms_deliveries_total",
        "rooms_client_errors_total",
        "rooms_slow_clients_closed_total",
        "rooms_rooms_expired_total",
        "rooms_connections_refused_total",
        "rooms_presence_frames_total",
        "rooms_typing_relayed_total",
        "rooms_connections",
        "rooms_active_rooms",
    ):
        assert kept in names


def dashboard_expressions() -> list[str]:
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            expressions.append(query["query"])
    return expressions


def alert_expressions() -> list[str]:
    rules = yaml.safe_load((DOCS / "prometheus-alerts.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


@pytest.mark.gen_test
async def test_every_metric_the_dashboard_and_the_alerts_query_is_exported(http_server, http_port, http_client):
    await use_everything(http_client, http_port)
    exported = exported_names(await scrape(http_client, http_port))
    dashboard = dashboard_expressions()
    alerts = alert_expressions()
    assert len(dashboard) > 20 and len(alerts) >= 6
    for expression in dashboard:
        assert metric_names(expression) and metric_names(expression) <= exported, expression
    for expression in alerts:
        assert metric_names(expression) and metric_names(expression) <= exported | RECORDED_BY_PROMETHEUS, expression


def test_the_query_reader_finds_the_metrics_and_nothing_else():
    assert metric_names(
        'histogram_quantile(0.99, sum by (le, route) (rate(a_bucket{route!="/chat/{label}/"}[$__rate_interval])))'
    ) == {"a_bucket"}
    assert metric_names("deriv(m[1h]) > 0 and m > 1.5e9 * min_over_time(n{job='x'}[6h])") == {"m", "n"}
    assert metric_names("sum(rate(a_sum[5m])) by (x) / on (x) group_left sum(rate(a_count[5m]))") == {
        "a_sum",
        "a_count",
    }
    assert metric_names("label_values(rooms_build_info, instance)") == {"rooms_build_info"}

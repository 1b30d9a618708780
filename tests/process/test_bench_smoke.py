"""Keeps the benchmark's load generator working: a tiny run against a real rooms process.

No timing is asserted (this is not a benchmark); only that every message reached every client of its
room exactly once, in order, and that the figures the benchmark relies on are there.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
import yaml

from tests.support.processes import ROOT, ServerProcess


@pytest.fixture
def rooms_server() -> Iterator[tuple[str, int]]:
    """A rooms process on the memory backend with its rate limit raised, as the benchmark runs it."""
    config = {"server": {"log_level": "warning"}, "limits": {"messages_per_second": 100_000, "burst": 100_000}}
    server = ServerProcess("memory://", config=yaml.safe_dump(config))
    try:
        server.wait_healthy()
        yield f"ws://127.0.0.1:{server.port}", server.process.pid
    finally:
        server.stop()


def test_load_generator_sees_every_message_once_in_order(rooms_server: tuple[str, int]) -> None:
    url, pid = rooms_server
    command = [
        sys.executable, "-m", "bench.loadgen", "--url", url, "--server-pid", str(pid),
        "--rooms", "2", "--clients", "3", "--senders", "2", "--window", "4", "--messages", "15",
        "--room-prefix", "smoke", "--settle", "0",
    ]  # fmt: skip
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert finished.returncode == 0, finished.stderr
    result = json.loads(finished.stdout)

    assert result["connected"] == result["joined"] == 6
    assert result["accepted"] == 2 * 2 * 15
    assert result["deliveries_expected"] == result["deliveries_received"] == 2 * 2 * 15 * 3
    assert (result["lost"], result["duplicated"], result["out_of_order"]) == (0, 0, 0)
    assert result["errors"] == {}
    assert result["server_cpu_us_per_delivery"] is not None
    assert result["server_rss_kib"]["connected"] > 0
    assert set(result["latency_ms"]) == {"p50", "p90", "p99", "max"}


def test_the_presence_variant_counts_presence_and_typing_apart_from_deliveries(rooms_server: tuple[str, int]) -> None:
    """The fan-out-with-presence scenario's load, in a room of 10: every client announces a handle, two
    type; presence and typing frames are counted on their own, and every message still arrives once."""
    from bench.scenarios import SCENARIOS

    scenario = next(s for s in SCENARIOS if s.name == "fanout-presence")
    load = {**scenario.load_of("rooms+presence", quick=True), "clients": 10, "senders": 2, "window": 4}
    load["typing-fraction"] = 0.2
    load["duration"] = 2.5
    url, pid = rooms_server
    command = [sys.executable, "-m", "bench.loadgen", "--url", url, "--server-pid", str(pid), "--settle", "0"]
    for key, value in load.items():
        command += [f"--{key}", str(value)]
    finished = subprocess.run(
        [*command, "--room-prefix", "smokep"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert finished.returncode == 0, finished.stderr
    result = json.loads(finished.stdout)

    assert result["joined"] == 10
    assert result["deliveries_expected"] == result["deliveries_received"] > 0
    assert (result["lost"], result["duplicated"], result["out_of_order"]) == (0, 0, 0)
    assert result["errors"] == {} and result["unrecognised_frames"] == 0
    signals = result["signals"]
    assert signals["typists"] == 2
    assert signals["typing_sent"] >= 2  # each at least once: the first frames are spread over 2 s
    # Each typing frame reaches the 9 others (the 2 s between a typist's frames are never shorter).
    assert signals["typing_received"] == signals["typing_expected"] == 9 * signals["typing_sent"]
    # The 8 others announce themselves while measuring: presence changes, and every client is told.
    assert signals["presence_received"] >= 10
    assert signals["presence_per_client_s"] > 0 and signals["typing_per_client_s"] > 0


def test_the_soak_runs_briefly_and_reports_its_curve(tmp_path):
    """A smoke run of the soak (seconds, not the hour it is meant for): it drives every kind of churn
    against a real process, samples its RSS and draws the curve; the hour's verdict is not asserted."""
    result_path, plot_path = tmp_path / "soak.json", tmp_path / "soak.png"
    short = ["--minutes", "0.3", "--sample-seconds", "3", "--clients", "8", "--stalled", "1"]
    subprocess.run(
        [sys.executable, "-m", "bench.soak", *short, "--json", str(result_path), "--plot", str(plot_path)],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
    )
    result = json.loads(result_path.read_text())
    assert result["exit_status"] == 0
    assert len(result["samples"]) >= 4
    churn = result["churn"]
    assert churn["connects"] > 0 and churn["messages"] > 0 and churn["replays"] > 0
    assert churn["bad_frames"] > 0 and churn["stalled_readers"] > 0
    assert churn["failures"] == {}
    assert plot_path.read_bytes().startswith(b"\x89PNG")


def test_the_search_scenario_fills_a_room_and_times_every_query(tmp_path):
    """The search scenario in quick mode on SQLite (2,000 messages filled through the backend, 10 rounds):
    every query is asked and answered, the fill is counted, and the results page gets its table."""
    page, raw = tmp_path / "bench.md", tmp_path / "bench.json"
    command = [sys.executable, "-m", "bench.run", "--quick", "--only", "search", "--servers", "rooms-sqlite"]
    finished = subprocess.run(
        [*command, "--output", str(page), "--json", str(raw)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert finished.returncode == 0, finished.stderr
    result = json.loads(raw.read_text())["search"]["rooms-sqlite"]

    assert "error" not in result and "skipped" not in result, result
    assert result["fill"]["messages"] == 2_000 and result["fill"]["messages_per_s"] > 0
    queries = {"rare", "common", "two-words", "prefix", "nothing", "paging"}
    assert set(result["latency_ms"]) == queries
    assert result["searches"] == 10 * len(queries)
    found = result["first_page_matches"]
    assert found["nothing"] == 0 and found["rare"] >= 1
    assert found["common"] == found["two-words"] == found["prefix"] == found["paging"] == result["limit"]
    assert result["paging_pages_read"] == 11  # the warm-up round's page and one a round, each before the last
    assert "### Search" in page.read_text() and "rooms-sqlite: search p99" in page.read_text()


def test_the_reactions_scenario_counts_reactions_frames_beside_the_messages(tmp_path):
    """The reactions scenario in quick mode on the memory store (500 clients, 50 of them react): every
    message and every reactions frame reaches every client, each client's ``at`` increases, and CPU per
    delivery counts both kinds of frame; the plain row runs beside it and the page gets its lines."""
    page, raw = tmp_path / "bench.md", tmp_path / "bench.json"
    command = [sys.executable, "-m", "bench.run", "--quick", "--only", "reactions", "--servers", "rooms"]
    finished = subprocess.run(
        [*command, "--output", str(page), "--json", str(raw)], cwd=ROOT, capture_output=True, text=True, timeout=240
    )
    assert finished.returncode == 0, finished.stderr
    results = json.loads(raw.read_text())["reactions"]
    assert set(results) == {"rooms", "rooms+reactions"}
    plain, reacting = results["rooms"], results["rooms+reactions"]

    for result in (plain, reacting):
        assert "error" not in result and "skipped" not in result, result
        assert result["joined"] == 500
        assert result["deliveries_expected"] == result["deliveries_received"] > 0
        assert (result["lost"], result["duplicated"], result["out_of_order"]) == (0, 0, 0)
        assert result["errors"] == {} and result["unrecognised_frames"] == 0
    assert "reactions" not in plain
    reactions = reacting["reactions"]
    assert reactions["reactors"] == 50 and reactions["sent"] > 0
    # Each reaction is a real change (on, then off on the same message), so it reaches all 500 sockets.
    assert reactions["frames_received"] == reactions["frames_expected"] == 500 * reactions["sent"]
    assert reactions["at_not_increasing"] == 0
    server_cpu_us = reacting["server_cpu_s"] * 1e6
    deliveries = reacting["deliveries_received"] + reactions["frames_received"]
    assert reacting["server_cpu_us_per_delivery"] == pytest.approx(server_cpu_us / deliveries, abs=0.001)
    text = page.read_text()
    assert "### Fan-out with reactions" in text and "rooms+reactions CPU per delivery <= 1.3x" in text


def test_the_big_room_load_joins_reaches_and_leaves_every_round(rooms_server: tuple[str, int]) -> None:
    """The bigroom scenario's client at a small size (60 clients from many loopback addresses, 20 at the
    checkpoint, two rounds): everyone joins, three messages one at a time and a burst of 10 reach everyone once
    each in order, and the server holds no more descriptors after each round than it did empty."""
    url, pid = rooms_server
    command = [
        sys.executable, "-m", "bench.bigroom", "--url", url, "--server-pid", str(pid),
        "--clients", "60", "--checkpoint", "20", "--singles", "3", "--burst", "10", "--rounds", "2",
        "--settle", "0", "--room-prefix", "smokebig",
    ]  # fmt: skip
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    result = json.loads(finished.stdout)

    assert result["joined"] == result["checkpoint_joined"] * 3 == 60
    assert [r["joined"] for r in result["join_leave_rounds"]] == [60, 60]
    assert all(r["connect_failures"] == {} for r in result["join_leave_rounds"])
    # Where connections are tracked, each round says how full the table was and what it dropped.
    assert all(
        (r["conntrack_entries_at_start"] is None) == (r["conntrack_drops"] is None) for r in result["join_leave_rounds"]
    )
    assert all((r["conntrack_drops"] or 0) >= 0 for r in result["join_leave_rounds"])
    assert result["one_message"]["deliveries_expected"] == result["one_message"]["deliveries_received"] == 60
    assert (
        len(result["single_p99s_ms"]) == 3
        and result["one_message"]["latency_ms"]["p99"] == sorted(result["single_p99s_ms"])[1]
    )
    assert result["burst"]["deliveries_expected"] == result["burst"]["deliveries_received"] == 600
    assert (result["lost"], result["duplicated"], result["out_of_order"]) == (0, 0, 0)
    assert result["errors"] == {}
    assert all(r["descriptors_left"] <= result["descriptors_empty"] + 8 for r in result["join_leave_rounds"])
    assert result["join_cpu_us"] is not None and result["kib_per_connection"] is not None
    assert set(result["burst"]["latency_ms"]) == {"p50", "p99", "max"}


def test_the_restart_brings_every_page_back_caught_up_with_since(tmp_path):
    """The restart measurement at a small size (40 pages on SQLite): the first process closes every socket
    with 1001, and every page comes back to the new one and receives the messages sent after it, once each,
    in order, without the ones it had before the restart again."""
    raw = tmp_path / "restart.json"
    command = [sys.executable, "-m", "bench.restart", "--pages", "40", "--messages", "3", "--json", str(raw)]
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    result = json.loads(raw.read_text())

    assert result["joined"] == 40
    assert result["before_restart"]["deliveries_received"] == result["before_restart"]["deliveries_expected"] == 41 * 3
    assert result["close_codes"] == {"1001": 41}
    assert result["back"] == result["caught_up"] == 40
    assert (result["duplicated"], result["out_of_order"], result["gaps"]) == (0, 0, 0)
    assert result["caught_up_seconds"]["last"] is not None

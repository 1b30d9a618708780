"""The benchmark's servers: a C allocator's environment, refused with what to install where it is missing, and
the rows ``--servers`` adds beside a scenario's own."""

from __future__ import annotations

import ctypes.util

import pytest

from bench.report import render
from bench.run import rows
from bench.scenarios import SCENARIOS
from bench.servers import SERVERS, Allocator, ServerSpec, Unavailable


def scenario(name: str):
    return next(s for s in SCENARIOS if s.name == name)


def test_a_server_whose_allocator_is_missing_is_refused_saying_what_to_install():
    spec = ServerSpec("rooms-nothing", "rooms", allocator=Allocator("no-such-allocator", "libno-such-allocator1"))
    with pytest.raises(Unavailable, match="apt-get install libno-such-allocator1"):
        spec.check_available()


def test_rooms_on_jemalloc_runs_python_on_jemalloc_with_the_decay_measured():
    allocator = SERVERS["rooms-jemalloc"].allocator
    assert allocator is not None
    if ctypes.util.find_library("jemalloc") is None:
        with pytest.raises(Unavailable, match="apt-get install libjemalloc2"):
            allocator.environment()
        return
    environment = allocator.environment()
    assert environment["PYTHONMALLOC"] == "malloc"
    assert "jemalloc" in environment["LD_PRELOAD"]
    assert environment["MALLOC_CONF"] == "background_thread:true,dirty_decay_ms:500,muzzy_decay_ms:0"


@pytest.mark.parametrize("name", ["bigroom", "fanout", "idle"])
def test_rooms_on_jemalloc_runs_right_after_rooms_when_named(name: str):
    assert rows(scenario(name), ["rooms", "rooms-jemalloc"]) == ["rooms", "rooms-jemalloc"]
    assert rows(scenario(name), ["rooms-jemalloc"]) == ["rooms-jemalloc"]


def test_rooms_on_jemalloc_is_no_row_unless_named():
    assert "rooms-jemalloc" not in rows(scenario("bigroom"), None)
    assert rows(scenario("bigroom"), ["rooms"]) == ["rooms"]
    # rooms+presence runs on rooms, so naming rooms picks it too; the allocator's row follows the plain row only.
    picked = rows(scenario("fanout-presence"), ["rooms", "rooms-jemalloc"])
    assert picked == ["rooms", "rooms-jemalloc", "rooms+presence"]


def test_the_results_show_a_row_run_only_when_named_after_the_scenario_s_own():
    skipped = {"skipped": "libjemalloc is not installed: apt-get install libjemalloc2"}
    section = render(
        [(scenario("idle"), {"rooms-jemalloc": skipped})], "python -m bench.run", False, "", (0.0,), (0.0,), 1
    )
    table = [line for line in section.splitlines() if line.startswith("| rooms") or line.startswith("| baseline")]
    assert [line.split(" | ")[0] for line in table[:4]] == [
        "| baseline",
        "| rooms",
        "| rooms+uvloop",
        "| rooms-jemalloc",
    ]
    assert "apt-get install libjemalloc2" in table[3]

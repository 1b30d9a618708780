"""The benchmark's servers: rooms on the allocator it chooses and on Python's own, the rows ``--servers`` adds
beside a scenario's own, and a started server's memory read once it has settled."""

from __future__ import annotations

from bench.report import render
from bench.run import rows
from bench.scenarios import SCENARIOS
from bench.servers import SERVERS, SETTLE_INTERVAL, SETTLE_READS, wait_settled


def scenario(name: str):
    return next(s for s in SCENARIOS if s.name == name)


def test_rooms_runs_on_the_allocator_it_chooses_and_rooms_pymalloc_on_python_s_own():
    assert SERVERS["rooms"].allocator == "auto"
    assert SERVERS["rooms-pymalloc"].allocator == "python"
    assert SERVERS["rooms-pymalloc"].alongside == "rooms"


def test_rooms_on_python_s_allocator_runs_right_after_rooms_when_named():
    for name in ("bigroom", "fanout", "idle"):
        assert rows(scenario(name), ["rooms", "rooms-pymalloc"]) == ["rooms", "rooms-pymalloc"]
        assert rows(scenario(name), ["rooms-pymalloc"]) == ["rooms-pymalloc"]


def test_rooms_on_python_s_allocator_is_no_row_unless_named():
    assert "rooms-pymalloc" not in rows(scenario("bigroom"), None)
    assert rows(scenario("bigroom"), ["rooms"]) == ["rooms"]
    # rooms+presence runs on rooms, so naming rooms picks it too; the allocator's row follows the plain row only.
    picked = rows(scenario("fanout-presence"), ["rooms", "rooms-pymalloc"])
    assert picked == ["rooms", "rooms-pymalloc", "rooms+presence"]


def test_the_results_show_a_row_run_only_when_named_after_the_scenario_s_own():
    skipped = {"skipped": "server exited with status 2"}
    section = render(
        [(scenario("idle"), {"rooms-pymalloc": skipped})], "python -m bench.run", False, "", (0.0,), (0.0,), 1
    )
    table = [line for line in section.splitlines() if line.startswith("| rooms") or line.startswith("| baseline")]
    assert [line.split(" | ")[0] for line in table[:4]] == [
        "| baseline",
        "| rooms",
        "| rooms+uvloop",
        "| rooms-pymalloc",
    ]
    assert "server exited with status 2" in table[3]


def settled(readings: list[int]) -> tuple[int, list[float]]:
    """What ``wait_settled`` returns over these reads of RSS, and the pauses it took between them."""
    left, pauses = iter(readings), []
    return wait_settled([1], read=lambda _: next(left), pause=pauses.append), pauses


def test_memory_is_read_once_two_reads_a_while_apart_agree():
    # jemalloc gives back what starting freed about a second after the server listens.
    assert settled([56_400, 53_700, 53_690]) == (53_690, [SETTLE_INTERVAL, SETTLE_INTERVAL])
    assert settled([51_600, 51_620]) == (51_620, [SETTLE_INTERVAL])


def test_memory_that_never_settles_is_read_at_the_last_read():
    value, pauses = settled([50_000 + 5_000 * n for n in range(SETTLE_READS)])
    assert value == 50_000 + 5_000 * (SETTLE_READS - 1) and len(pauses) == SETTLE_READS - 1

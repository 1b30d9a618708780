"""The collector policy of a server process (``rooms.service.collector``): full collections wait for their
timer however many objects pile up, the young generations are still collected, a cycle that grew old is
freed by the timed collection, and memory is trimmed once many sockets have left, and once the last of them
has, each time after what was kept for them is let go."""

from __future__ import annotations

import asyncio
import gc
import os
import selectors
import tracemalloc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
import tornado.platform.asyncio
from tornado.ioloop import IOLoop

from rooms.service.collector import (
    FULL_COLLECTION_SECONDS,
    TRIM_AFTER_LEAVING,
    MemoryPolicy,
    glibc_malloc_trim,
    hold_off_full_collections,
)

# Objects that live on, as a room's sockets do: at least this many, and more than the oldest generation
# already holds (Python runs a full collection once it has grown by a quarter).
PILE = 400_000


@pytest.fixture
def collections() -> Iterator[list[int]]:
    """The generation of every collection that runs meanwhile; Python's thresholds restored afterwards."""
    thresholds = gc.get_threshold()
    runs: list[int] = []

    def record(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            runs.append(info["generation"])

    gc.collect()
    gc.callbacks.append(record)
    try:
        yield runs
    finally:
        gc.callbacks.remove(record)
        gc.set_threshold(*thresholds)
        gc.unfreeze()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class LookedUp:
    """A class whose attributes are looked up by names it does not have."""


def pile_up() -> list[list[int]]:
    return [[n] for n in range(max(PILE, len(gc.get_objects(generation=2)) + 1))]


def test_objects_piling_up_run_full_collections_under_pythons_thresholds(collections):
    kept = pile_up()
    assert 2 in collections  # what the policy is for: without it, the pile alone runs full collections
    del kept


def test_objects_piling_up_run_no_full_collection_under_the_policy(collections):
    hold_off_full_collections()
    kept = pile_up()
    assert 2 not in collections
    assert 0 in collections  # young objects are still collected as they come
    del kept


def test_the_middle_generation_is_collected_after_every_young_collection_under_the_policy(collections):
    hold_off_full_collections()
    kept = pile_up()
    young, middle = collections.count(0), collections.count(1)
    assert young > 10
    # Each young collection's survivors are looked at again at the next collection, not ten later.
    assert middle >= young - 1
    del kept


def test_an_old_cycle_is_freed_by_the_timed_full_collection(collections):
    clock = Clock()
    policy = MemoryPolicy(lambda: 0, clock=clock)
    hold_off_full_collections()

    class Node:
        other: Node

    node = Node()
    node.other = node
    gone = weakref.ref(node)
    gc.collect(1)  # while still in use it grows old: into the oldest generation
    del node
    kept = pile_up()  # young collections meanwhile leave the oldest generation alone
    clock.now += FULL_COLLECTION_SECONDS - 1
    policy.check()
    assert gone() is not None
    clock.now += 1
    policy.check()
    assert gone() is None
    assert policy.full_collections == 1
    del kept


def test_memory_is_trimmed_once_half_the_sockets_and_enough_of_them_left(collections):
    real_trim = glibc_malloc_trim()
    assert real_trim is not None  # the test machine's C library is glibc
    trimmed: list[int] = []

    def trim() -> int:
        trimmed.append(real_trim())
        return trimmed[-1]

    sockets = [0]
    policy = MemoryPolicy(lambda: sockets[0], trim, clock=Clock())
    many = 5 * TRIM_AFTER_LEAVING
    for count, trims in [
        (many, 0),
        (many - TRIM_AFTER_LEAVING, 0),  # enough left, but not half
        (many // 2, 1),
        (many // 2 - TRIM_AFTER_LEAVING // 2, 1),  # too few left since the last trim
        (0, 2),
        (TRIM_AFTER_LEAVING // 2, 2),  # a room of fewer comes and goes: too few to trim for
        (0, 2),
    ]:
        sockets[0] = count
        policy.check()
        assert (count, len(trimmed), policy.trims) == (count, trims, trims)
    assert policy.full_collections == 2  # each trim comes after a full collection


def test_memory_is_trimmed_when_the_last_of_a_crowd_has_gone_after_what_was_kept_for_it_is_let_go(collections):
    steps: list[str] = []

    def trim() -> int:
        steps.append("trim")
        return 1

    def release() -> None:
        steps.append(f"release after {collections.count(2)} full collections")

    sockets = [0]
    policy = MemoryPolicy(lambda: sockets[0], trim, clock=Clock(), release=release)
    crowd = 3 * TRIM_AFTER_LEAVING
    for count, trims in [
        (crowd, 0),
        (TRIM_AFTER_LEAVING - 1, 1),  # half and enough left: the room is still emptying
        (0, 2),  # too few left since for a halving, but the crowd has gone: what it freed last is given back
        (TRIM_AFTER_LEAVING - 1, 2),  # fewer than a crowd come and go: nothing to trim for
        (0, 2),
    ]:
        sockets[0] = count
        policy.check()
        assert (count, policy.trims) == (count, trims)
    assert steps == ["release after 0 full collections", "trim", "release after 1 full collections", "trim"]


def loop_tables_bytes() -> int:
    """What Tornado's asyncio loop and the selector allocated and still hold: their tables of descriptors."""
    files = [tornado.platform.asyncio.__file__, selectors.__file__]
    snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(True, name) for name in files])
    return sum(stat.size for stat in snapshot.statistics("filename"))


def test_the_loops_tables_of_descriptors_are_built_anew_when_the_last_of_a_crowd_has_gone(collections):
    sockets = [0]

    async def crowd_comes_and_goes() -> tuple[int, int, int]:
        io_loop = IOLoop.current()
        policy = MemoryPolicy(lambda: sockets[0], clock=Clock())
        policy.start()
        try:
            empty = loop_tables_bytes()
            pipes = [os.pipe() for _ in range(200)]
            for pipe in pipes:
                for end in pipe:
                    io_loop.add_handler(end, lambda descriptor, events: None, IOLoop.READ)
            sockets[0] = TRIM_AFTER_LEAVING
            policy.check()
            for pipe in pipes:
                for end in pipe:
                    io_loop.remove_handler(end)
                    os.close(end)
            left = loop_tables_bytes()
            sockets[0] = 0
            policy.check()
            # The loop still watches what it watched before (its own wake-up pipe among them).
            io_loop.add_callback(lambda: None)
            await asyncio.sleep(0)
            return empty, left, loop_tables_bytes()
        finally:
            policy.stop()

    tracemalloc.start()
    try:
        empty, left, rebuilt = asyncio.run(crowd_comes_and_goes())
    finally:
        tracemalloc.stop()
    assert left - empty > 20_000  # 400 descriptors gone, their tables' storage kept
    assert rebuilt - empty < 1_000


def test_names_held_by_the_cache_of_attribute_lookups_are_let_go_when_the_last_of_a_crowd_has_gone(collections):
    # The cache keeps a reference to every name it was asked for, even one made anew for a single lookup (as
    # datetime's timetuple makes "struct_time" each call). Names that are alive together sit at different
    # addresses, so hundreds of them land in different slots of the cache and stay there.
    sockets = [TRIM_AFTER_LEAVING]
    policy = MemoryPolicy(lambda: sockets[0], clock=Clock())
    policy.check()
    tracemalloc.start()
    try:
        names = [f"looked_up_{number}" for number in range(2000)]
        for name in names:
            getattr(LookedUp, name, None)
        del names
        here = [tracemalloc.Filter(True, __file__)]
        kept = len(tracemalloc.take_snapshot().filter_traces(here).traces)
        sockets[0] = 0
        policy.check()
        left = len(tracemalloc.take_snapshot().filter_traces(here).traces)
    finally:
        tracemalloc.stop()
    assert kept > 200
    assert left < 10  # the test's own few (the filter, the counts)

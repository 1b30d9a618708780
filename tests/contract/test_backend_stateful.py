"""The backend contract (backends/base.py) as a hypothesis state machine, on every backend, with the memory
backend as the reference model.

Each step stores messages (several at once, so SQL commits them as one batch and Redis sends them as one
pipeline; client ids from a small pool, so resends happen) or reads: the newest page, pages before and after
a stored id, and the recovery call ``replay``. The same steps run on a memory backend (the reference) and on
the backend under test; their ids differ, so every stored message is kept as a pair (reference message,
message under test) and ids are translated through it.

What the backend under test delivers to its subscriber must be the room's log itself: stored before
broadcast, in the one order, a resend not delivered again.

With nothing pruned the answers must be the reference's exactly. With a small ``retain_per_room`` the
reference prunes exactly and at once; SQL prunes in the background, so a backend under test may hold more of
the newest messages than the reference, never fewer, and what it once pruned never comes back. There every
answer is checked against what the contract guarantees: it must be the reference's answer for a history that
keeps the newest messages from some point no later than the reference's, and no earlier than the backend was
already seen to have pruned.

What the machine found is pinned by plain tests in test_machine_findings.py; the model it checks against is
tests/support/history_model.py.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule, run_state_machine_as_test

from backends.base import Backend, HistoryPage, NewMessage, Replay, StoredMessage, StoreResult
from backends.memory import MemoryBackend
from tests.support.factories import all_factories
from tests.support.history_model import Page, RoomLog, newest_page, page_after, replay_gap
from tests.support.messages import new_message

T = TypeVar("T")

FACTORIES = all_factories()
RETAIN_ALL = 10000  # the default; no machine here comes near it
RETAIN_FEW = 5
ROOM_SUFFIXES = ("a", "A", "b")  # labels are case-sensitive
# Different ids however a collation might fold them: case, trailing space, composed and decomposed accents,
# 4-byte UTF-8, the longest allowed.
CLIENT_IDS = ("c1", "C1", "c1 ", "\u00e9", "e\u0301", "\U0001f680", "x" * 64)
WAIT_SECONDS = 5  # for what the backend under test does in the background (delivery, pruning)
PRUNE_SECONDS = 3  # short: shrinking a machine whose pruning never comes waits this at every step
MAX_BATCH = RETAIN_FEW  # stores started together

STATEFUL = settings(
    max_examples=25,
    stateful_step_count=30,
    deadline=None,
    database=None,  # no example database of failures kept on disk
    suppress_health_check=[HealthCheck.too_slow],
)

# Text the wire module lets through (rooms/protocol.py): no surrogates, no NUL, no control characters in a handle.
handles = st.sampled_from(["ann", "bob", "Zo\u00eb \U0001f680"]) | st.text(
    st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=8
)
texts = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1, max_size=20)
client_ids = st.none() | st.sampled_from(CLIENT_IDS)
limits = st.integers(min_value=1, max_value=8) | st.just(200)
rooms = st.integers(min_value=0, max_value=len(ROOM_SUFFIXES) - 1)


class Recorder:
    """The delivery target: what the backend under test delivered, per room."""

    def __init__(self) -> None:
        self.delivered: dict[str, list[StoredMessage]] = defaultdict(list)

    def deliver(self, message: StoredMessage) -> None:
        self.delivered[message.room].append(message)

    def gap(self, room: str) -> None:
        pass

    def deleted(self, room: str, message_id: str) -> None:
        pass  # the machine deletes nothing

    def moderation_changed(self) -> None:
        pass


@dataclass
class Bench:
    """What one test shares across its examples; each example uses rooms of its own."""

    name: str
    retain: int
    loop: asyncio.AbstractEventLoop
    backend: Backend
    reference: MemoryBackend
    recorder: Recorder
    examples: int = 0

    def run(self, awaitable: Awaitable[T]) -> T:
        return self.loop.run_until_complete(awaitable)


async def store_together(backend: Backend, messages: list[NewMessage]) -> list[StoreResult]:
    """Start every store before waiting for any."""
    futures = [backend.store_soon(message) for message in messages]
    return list(await asyncio.gather(*futures))


class ContractMachine(RuleBasedStateMachine):
    bench: ClassVar[Bench]

    def __init__(self) -> None:
        super().__init__()
        self.bench.examples += 1
        self.logs = [RoomLog(f"s{self.bench.examples}{suffix}") for suffix in ROOM_SUFFIXES]

    @initialize()
    def subscribe(self) -> None:
        for log in self.logs:
            self.bench.run(self.bench.backend.subscribe(log.label))

    def teardown(self) -> None:
        for log in self.logs:
            self.bench.run(self.bench.backend.unsubscribe(log.label))

    # -- helpers --------------------------------------------------------------------------------------

    @property
    def retain(self) -> int:
        return self.bench.retain

    def kept_from(self, log: RoomLog) -> int:
        """The index of the oldest message the reference keeps (it prunes exactly, at once)."""
        return max(0, len(log.pairs) - self.retain) if self.retain else 0

    def pick(self, data: st.DataObject, log: RoomLog, name: str) -> tuple[int, str, str]:
        """A position to read from: a stored message (pruned or not) or -1 for "0"; with both its ids."""
        index = data.draw(st.integers(min_value=-1, max_value=len(log.pairs) - 1), label=name)
        if index < 0:
            return -1, "0", "0"
        reference, tested = log.pairs[index]
        assert tested is not None
        return index, reference.id, tested.id

    def indices(self, log: RoomLog, messages: list[StoredMessage], tested: bool) -> list[int]:
        """Where each message of a page is in the log; its contents must be the stored ones exactly."""
        index_of = log.tested_index if tested else log.reference_index
        found = []
        for message in messages:
            assert message.id in index_of, f"{message!r} was never stored in {log.label}"
            index = index_of[message.id]
            assert message == log.pairs[index][1 if tested else 0], f"message {index} changed"
            found.append(index)
        return found

    def check(self, log: RoomLog, model: Callable[[int], Any], reference: Any, tested: Any) -> list[int]:
        """The reference must answer as the model does for what it keeps; the backend under test as the model
        does for some point it may have pruned to. Returns those points; the oldest becomes the lower bound."""
        floor = self.kept_from(log)
        assert reference == model(floor), f"the reference itself: {reference} != model {model(floor)}"
        possible = [kept for kept in range(log.pruned_at_least, floor + 1) if model(kept) == tested]
        assert possible, (
            f"{self.bench.name} answered {tested}; the reference (keeping from index {floor}) {reference}; "
            f"already seen pruned to index {log.pruned_at_least}"
        )
        log.pruned_at_least = possible[0]
        return possible

    def as_page(self, log: RoomLog, page: HistoryPage, tested: bool) -> Page:
        return self.indices(log, page.messages, tested), page.has_more

    # -- rules ----------------------------------------------------------------------------------------

    @rule(batch=st.lists(st.tuples(rooms, handles, texts, client_ids), min_size=1, max_size=MAX_BATCH))
    def store(self, batch: list[tuple[int, str, str, str | None]]) -> None:
        """Messages to any rooms, started together and only then waited for: one commit on SQL, one
        pipeline on Redis."""
        self.store_batch(batch)

    @rule(
        room=rooms,
        batch=st.lists(st.tuples(handles, texts, client_ids), min_size=2, max_size=MAX_BATCH),
    )
    def store_in_one_room(self, room: int, batch: list[tuple[str, str, str | None]]) -> None:
        """Several messages to one room at once: what fills a room past retention."""
        self.store_batch([(room, handle, text, client_id) for handle, text, client_id in batch])

    def store_batch(self, batch: list[tuple[int, str, str, str | None]]) -> None:
        pending: list[tuple[RoomLog, NewMessage, StoreResult, int]] = []
        for room, handle, text, client_id in batch:
            log = self.logs[room]
            original = log.by_client_id.get(client_id) if client_id is not None else None
            if original is not None and self.retain and original < len(log.pairs) - self.retain:
                # Its first message is pruned from the reference but may still be in a store that prunes
                # in the background: either answer keeps the contract, so it is not asked.
                client_id = original = None
            message = new_message(log.label, handle, text, client_id)
            reference = self.bench.run(self.bench.reference.store(message))  # stored at once, in order
            assert reference.duplicate == (original is not None)
            if reference.duplicate:
                assert original is not None
                assert reference.message == log.pairs[original][0]
                pending.append((log, message, reference, original))
                continue
            log.reference_index[reference.message.id] = len(log.pairs)
            if client_id is not None:
                log.by_client_id[client_id] = len(log.pairs)
            log.pairs.append((reference.message, None))
            pending.append((log, message, reference, len(log.pairs) - 1))

        backend = self.bench.backend
        results = self.bench.run(store_together(backend, [message for _, message, _, _ in pending]))

        for (log, message, reference, index), result in zip(pending, results, strict=True):
            assert result.duplicate == reference.duplicate, f"{message!r}: duplicate={result.duplicate}"
            if result.duplicate:
                assert result.message == log.pairs[index][1], "a resend must answer the first stored message"
                continue
            stored = result.message
            assert (stored.room, stored.handle, stored.message, stored.timestamp, stored.client_id) == (
                message.room,
                message.handle,
                message.message,
                message.timestamp,
                message.client_id,
            )
            assert stored.id not in log.tested_index, f"id {stored.id} given twice"
            if index:
                previous = log.pairs[index - 1][1]
                assert previous is not None
                assert backend.id_key(previous.id) < backend.id_key(stored.id), "ids must increase in store order"
            log.tested_index[stored.id] = index
            log.pairs[index] = (log.pairs[index][0], stored)

        # Stored before broadcast, one order, a resend not delivered again: what was delivered here is the log.
        for log in {id(log): log for log, _, _, _ in pending}.values():
            expected = [tested for _, tested in log.pairs]
            self.wait_until(
                lambda log=log, expected=expected: len(self.bench.recorder.delivered[log.label]) >= len(expected)
            )
            assert self.bench.recorder.delivered[log.label] == expected

    @rule(room=rooms, limit=limits)
    def history_newest(self, room: int, limit: int) -> None:
        log = self.logs[room]
        reference = self.bench.run(self.bench.reference.history(log.label, limit))
        tested = self.bench.run(self.bench.backend.history(log.label, limit))
        self.check(
            log,
            functools.partial(newest_page, end=len(log.pairs), limit=limit),
            self.as_page(log, reference, tested=False),
            self.as_page(log, tested, tested=True),
        )

    @rule(room=rooms, limit=limits, before=st.booleans(), data=st.data())
    def history_before_or_after(self, room: int, limit: int, before: bool, data: st.DataObject) -> None:
        log = self.logs[room]
        index, reference_id, tested_id = self.pick(data, log, "before" if before else "after")
        if before:
            reference = self.bench.run(self.bench.reference.history(log.label, limit, before=reference_id))
            tested = self.bench.run(self.bench.backend.history(log.label, limit, before=tested_id))
            model = functools.partial(newest_page, end=max(index, 0), limit=limit)
        else:
            reference = self.bench.run(self.bench.reference.history(log.label, limit, after=reference_id))
            tested = self.bench.run(self.bench.backend.history(log.label, limit, after=tested_id))
            model = functools.partial(page_after, after=index, limit=limit, length=len(log.pairs))
        self.check(log, model, self.as_page(log, reference, tested=False), self.as_page(log, tested, tested=True))

    @rule(room=rooms, limit=limits, data=st.data())
    def replay(self, room: int, limit: int, data: st.DataObject) -> None:
        log = self.logs[room]
        index, reference_id, tested_id = self.pick(data, log, "since")
        reference = self.bench.run(self.bench.reference.replay(log.label, reference_id, limit))
        tested = self.bench.run(self.bench.backend.replay(log.label, tested_id, limit))
        self.check_replay(log, index, reference_id, tested_id, limit, reference, tested)

    def check_replay(
        self, log: RoomLog, index: int, reference_id: str, tested_id: str, limit: int, reference: Replay, tested: Replay
    ) -> None:
        # Every id picked is one this room holds or held, so no answer starts over from "0".
        assert reference.after == reference_id
        assert tested.after == tested_id, f"replay after {tested.after}, asked since {tested_id}"
        floor = self.kept_from(log)
        assert reference.gap == replay_gap(floor, index)
        page = self.as_page(log, tested.page, tested=True)
        self.check(
            log,
            functools.partial(page_after, after=index, limit=limit, length=len(log.pairs)),
            self.as_page(log, reference.page, tested=False),
            page,
        )
        missing = bool(page[0]) and page[0][0] > index + 1
        if not tested.gap:
            assert not missing, "no gap, yet messages after since are missing"
        else:
            # The reference prunes at least as much: where it holds everything after since, so does the backend.
            assert reference.gap, f"gap reported since index {index}, though the backend holds everything after it"

    @precondition(lambda self: self.retain > 0)
    @rule(room=rooms)
    def pruning_catches_up(self, room: int) -> None:
        """Pruning may lag and keep a few extra, but it happens: soon no more than twice what is kept
        remains, and a client that saw the oldest message is told of the gap."""
        log = self.logs[room]
        if not self.pruned_soon(log):
            # On MariaDB the pruner's transaction sometimes deadlocks with the writer's; that prune is then
            # dropped (a warning is logged) and the room is pruned again at its next write. So what holds
            # is "soon after a write".
            self.store_batch([(room, "ann", "one more", None)])
            assert self.pruned_soon(log), f"{len(log.pairs)} stored, retain {self.retain}: pruning never came"
        if len(log.pairs) > 2 * self.retain + 1:
            oldest_reference, oldest_tested = log.pairs[0]
            assert oldest_tested is not None
            reference_id, tested_id = oldest_reference.id, oldest_tested.id
            reference_replay = self.bench.run(self.bench.reference.replay(log.label, reference_id, 200))
            tested_replay = self.bench.run(self.bench.backend.replay(log.label, tested_id, 200))
            self.check_replay(log, 0, reference_id, tested_id, 200, reference_replay, tested_replay)
            assert tested_replay.gap, "a client that saw a pruned message must be told of the gap"

    def pruned_soon(self, log: RoomLog) -> bool:
        """Whether the backend under test keeps at most twice what it should within PRUNE_SECONDS; every
        page read meanwhile is checked."""
        deadline = time.monotonic() + PRUNE_SECONDS
        while True:
            page = self.bench.run(self.bench.backend.history(log.label, 200))
            reference = self.bench.run(self.bench.reference.history(log.label, 200))
            self.check(
                log,
                functools.partial(newest_page, end=len(log.pairs), limit=200),
                self.as_page(log, reference, tested=False),
                self.as_page(log, page, tested=True),
            )
            if len(page.messages) <= 2 * self.retain:
                return True
            if time.monotonic() > deadline:
                return False
            self.bench.run(asyncio.sleep(0.05))

    def wait_until(self, condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while not condition() and time.monotonic() < deadline:
            self.bench.run(asyncio.sleep(0.01))


def run_machine(backend_name: str, retain: int, machine: type[ContractMachine] = ContractMachine, **overrides) -> None:
    """Run ``machine`` on a fresh backend of ``backend_name`` and a memory reference, with its own event loop."""
    loop = asyncio.new_event_loop()
    factory = FACTORIES[backend_name]()
    backend: Backend | None = None
    reference = MemoryBackend(retain_per_room=retain)
    try:
        backend = loop.run_until_complete(factory.create(retain_per_room=retain))
        recorder = Recorder()
        backend.set_delivery_target(recorder)
        loop.run_until_complete(reference.start())
        bench = Bench(backend_name, retain, loop, backend, reference, recorder)
        bound = type(f"{machine.__name__}On{backend_name.title()}", (machine,), {"bench": bench})
        run_state_machine_as_test(bound, settings=settings(STATEFUL, **overrides))
    finally:
        if backend is not None:
            loop.run_until_complete(backend.close())
        loop.run_until_complete(reference.close())
        loop.run_until_complete(factory.dispose())
        loop.close()


@pytest.mark.timeout(600)  # passing takes seconds; shrinking a failure that waits can take minutes
@pytest.mark.parametrize("retain", [RETAIN_ALL, RETAIN_FEW], ids=["retain-all", f"retain-{RETAIN_FEW}"])
def test_backend_keeps_the_contract_of_the_reference(backend_name, retain):
    run_machine(backend_name, retain)

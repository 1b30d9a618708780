"""The room's log (backends/changes.py) as a hypothesis state machine, on every backend that keeps it, with
the memory backend as the reference model.

Each step stores a message (with an author or not, replying to an earlier one or not), edits one (as its
author or not), reacts to one, deletes one (as its author, as someone else, or as a moderator), or reads:
the newest page, and a replay from any position with that position as its origin. The same steps run on
the reference and on the backend under test; their ids differ, so every message is kept by its index in
the room and ids are translated through it. Every answer (a refusal's kind included), every read and what
each delivered to its subscriber must then be the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from backends.base import Backend, NewMessage, Replay, StoredMessage
from backends.errors import BackendError
from backends.memory import MemoryBackend
from tests.support.factories import all_factories
from tests.support.recorder import Recorder

T = TypeVar("T")

FACTORIES = all_factories()
AUTHOR, SOMEONE_ELSE = "key:" + "a" * 64, "sub:mallory"
EDITED = "2026-12-06T12:00:00.000001+00:00"
WAIT_SECONDS = 5

STATEFUL = settings(
    max_examples=20, stateful_step_count=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
texts = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1, max_size=12)
emoji = st.sampled_from(["👍", "🎉", "👨‍👩‍👧", "🇫🇷"])
reactors = st.sampled_from(["sub:bob", "handle:carol", "handle:Carol"])


@dataclass
class Bench:
    loop: asyncio.AbstractEventLoop
    backend: Backend
    reference: MemoryBackend
    recorders: tuple[Recorder, Recorder]  # the reference's, the tested backend's
    examples: int = 0

    def run(self, awaitable: Awaitable[T]) -> T:
        return self.loop.run_until_complete(awaitable)


class LogMachine(RuleBasedStateMachine):
    bench: ClassVar[Bench]

    def __init__(self) -> None:
        super().__init__()
        self.bench.examples += 1
        self.room = f"log{self.bench.examples}"
        self.ids: list[tuple[str, str]] = []  # per index: (reference id, tested id)
        self.index: tuple[dict[str, int], dict[str, int]] = ({}, {})

    @initialize()
    def subscribe(self) -> None:
        for backend in self.backends:
            self.bench.run(backend.subscribe(self.room))

    def teardown(self) -> None:
        for backend in self.backends:
            self.bench.run(backend.unsubscribe(self.room))

    @property
    def backends(self) -> tuple[Backend, Backend]:
        return self.bench.reference, self.bench.backend

    def both(self, call: Any) -> tuple[Any, Any]:
        """``call(backend, side)`` on each; each answer, or the kind of error it raised."""
        answers = []
        for side, backend in enumerate(self.backends):
            try:
                answers.append(self.bench.run(call(backend, side)))
            except BackendError as exc:
                answers.append(type(exc))
        return answers[0], answers[1]

    def pick(self, data: st.DataObject, name: str) -> int:
        return data.draw(st.integers(min_value=-1, max_value=len(self.ids) - 1), label=name)

    def id_of(self, index: int, side: int) -> str:
        return "0" if index < 0 else self.ids[index][side]

    def same(self, reference: Any, tested: Any) -> None:
        assert self.translated(reference, 0) == self.translated(tested, 1), (reference, tested)

    def translated(self, value: Any, side: int) -> Any:
        """``value`` with every id (and position) of one side replaced by what stands for it on both."""
        if isinstance(value, StoredMessage):
            reply = None if value.reply_to is None else self.index[side][value.reply_to]
            return (
                "message",
                self.index[side][value.id],
                value.handle,
                value.message,
                value.timestamp,
                value.author,
                reply,
                value.edited,
                value.reactions,
            )
        if isinstance(value, Replay):
            return (
                value.gap,
                value.after == "0",
                self.translated(value.page.messages, side),
                value.page.has_more,
                [self.translated(change, side) for change in value.changes],
            )
        if isinstance(value, tuple) and hasattr(value, "kind"):  # a MessageChange: its position is not compared
            return (value.kind, self.index[side][value.id], value.message, value.edited, value.reactions)
        if isinstance(value, list):
            return [self.translated(item, side) for item in value]
        return value

    # -- rules ----------------------------------------------------------------------------------------

    @rule(text=texts, authored=st.booleans(), data=st.data())
    def store(self, text: str, authored: bool, data: st.DataObject) -> None:
        reply = self.pick(data, "reply_to") if self.ids else -1

        async def call(backend: Backend, side: int) -> StoredMessage:
            message = NewMessage(
                self.room,
                "ann",
                text,
                None,
                "2026-12-06T10:00:00+00:00",
                reply_to=None if reply < 0 else self.ids[reply][side],
                author=AUTHOR if authored else None,
            )
            return (await backend.store(message)).message

        reference, tested = self.both(call)
        if isinstance(reference, StoredMessage) and isinstance(tested, StoredMessage):
            self.index[0][reference.id], self.index[1][tested.id] = len(self.ids), len(self.ids)
            self.ids.append((reference.id, tested.id))
        self.same(reference, tested)

    @rule(text=texts, as_author=st.booleans(), data=st.data())
    def edit(self, text: str, as_author: bool, data: st.DataObject) -> None:
        index = self.pick(data, "edited")
        if index < 0:
            return
        authors = frozenset({AUTHOR if as_author else SOMEONE_ELSE})
        self.same(
            *self.both(
                lambda backend, side: backend.edit_message(self.room, self.id_of(index, side), text, EDITED, authors)
            )
        )

    @rule(reactor=reactors, symbol=emoji, on=st.booleans(), data=st.data())
    def react(self, reactor: str, symbol: str, on: bool, data: st.DataObject) -> None:
        index = self.pick(data, "reacted to")
        if index >= 0:
            self.same(
                *self.both(lambda backend, side: backend.react(self.room, self.id_of(index, side), reactor, symbol, on))
            )

    @rule(who=st.sampled_from(["author", "someone else", "moderator"]), data=st.data())
    def delete(self, who: str, data: st.DataObject) -> None:
        index = self.pick(data, "deleted")
        if index < 0:
            return
        authors = {"author": frozenset({AUTHOR}), "someone else": frozenset({SOMEONE_ELSE}), "moderator": None}[who]
        self.same(*self.both(lambda backend, side: backend.delete_message(self.room, self.id_of(index, side), authors)))

    @rule(limit=st.integers(min_value=1, max_value=6))
    def history(self, limit: int) -> None:
        self.same(*self.both(lambda backend, side: self.messages(backend.history(self.room, limit))))

    @rule(limit=st.integers(min_value=1, max_value=6), data=st.data())
    def replay(self, limit: int, data: st.DataObject) -> None:
        since = self.pick(data, "since")
        self.same(
            *self.both(
                lambda backend, side: backend.replay(
                    self.room, self.id_of(since, side), limit, origin=self.id_of(since, side)
                )
            )
        )

    @staticmethod
    async def messages(page: Awaitable[Any]) -> list[StoredMessage]:
        return (await page).messages

    @invariant()
    def delivered_alike(self) -> None:
        """Each subscriber heard the room's log, messages and changes, in the same order."""
        reference, tested = (recorder for recorder in self.bench.recorders)

        def heard(recorder: Recorder, side: int) -> list[tuple[str, int]]:
            return [
                (kind, self.index[side][message_id])
                for kind, room, message_id in recorder.events
                if room == self.room and message_id in self.index[side]
            ]

        expected = heard(reference, 0)
        deadline = self.bench.loop.time() + WAIT_SECONDS
        while heard(tested, 1) != expected and self.bench.loop.time() < deadline:
            self.bench.run(asyncio.sleep(0.01))
        assert heard(tested, 1) == expected


@pytest.mark.timeout(600)
def test_the_room_s_log_keeps_the_reference_s_answers(backend_name):
    loop = asyncio.new_event_loop()
    factory = FACTORIES[backend_name]()
    backend: Backend | None = None
    reference = MemoryBackend()
    try:
        backend = loop.run_until_complete(factory.create(retain_per_room=10000))
        recorders = (Recorder(), Recorder())
        reference.set_delivery_target(recorders[0])
        backend.set_delivery_target(recorders[1])
        loop.run_until_complete(reference.start())
        bench = Bench(loop, backend, reference, recorders)
        bound = type(f"LogMachineOn{backend_name.title()}", (LogMachine,), {"bench": bench})
        run_state_machine_as_test(bound, settings=STATEFUL)
    finally:
        if backend is not None:
            loop.run_until_complete(backend.close())
        loop.run_until_complete(reference.close())
        loop.run_until_complete(factory.dispose())
        loop.close()

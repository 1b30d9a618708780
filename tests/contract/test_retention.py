"""The backend contract (backends/base.py), what a room keeps: retention, and replay with or without a gap.

Run against every backend factory in tests/support/factories/ (the ``make_backend`` fixture).
"""

from __future__ import annotations

import pytest

from backends.base import Replay, StoredMessage
from tests.support.messages import fill
from tests.support.waiting import eventually


@pytest.mark.gen_test
async def test_retention_prunes_oldest_messages(make_backend):
    backend = await make_backend(retain_per_room=10)
    stored = await fill(backend, "lobby", 60)

    async def pruned() -> list[StoredMessage] | None:
        kept = (await backend.history("lobby", 200)).messages
        return kept if len(kept) <= 20 else None

    # Pruning may lag a little and may keep a few extra, never fewer than asked.
    kept = await eventually(pruned, timeout=5, interval=0.1, message="at most 20 kept")
    assert len(kept) >= 10
    assert [m.id for m in kept] == [m.id for m in stored[-len(kept) :]]


@pytest.mark.gen_test
async def test_retain_zero_keeps_everything(make_backend):
    backend = await make_backend(retain_per_room=0)
    await fill(backend, "lobby", 30)
    assert len((await backend.history("lobby", 200)).messages) == 30


@pytest.mark.gen_test
async def test_replay_without_gap_is_what_followed_since(make_backend):
    backend = await make_backend()
    stored = await fill(backend, "lobby", 5)
    replay = await backend.replay("lobby", stored[2].id, 10)
    assert (replay.gap, replay.after, replay.page.has_more) == (False, stored[2].id, False)
    assert replay.page.messages == stored[3:]
    first = await backend.replay("lobby", stored[0].id, 2)
    assert (first.page.messages, first.page.has_more) == (stored[1:3], True)
    whole = await backend.replay("lobby", "0", 10)
    assert (whole.gap, whole.page.messages) == (False, stored)
    assert (await backend.replay("lobby", stored[-1].id, 10)).page.messages == []


@pytest.mark.gen_test
async def test_replay_reports_gap_when_history_was_pruned(make_backend):
    backend = await make_backend(retain_per_room=5)
    stored = await fill(backend, "lobby", 40)

    async def gap() -> Replay | None:
        replay = await backend.replay("lobby", stored[0].id, 200)
        return replay if replay.gap else None

    replay = await eventually(gap, timeout=5, interval=0.1, message="a replay from the first message is a gap")
    assert replay.page.messages[-1] == stored[-1]
    assert not (await backend.replay("lobby", stored[-1].id, 200)).gap

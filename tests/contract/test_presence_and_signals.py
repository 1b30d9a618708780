"""The backend contract (backends/base.py), presence and signals: a process's share, never heard back.

Run against every backend factory in tests/support/factories/ (the ``make_backend`` fixture).
"""

from __future__ import annotations

import pytest

from backends.base import RoomPresence
from tests.support.messages import fill
from tests.support.recorder import subscribed_backend
from tests.support.waiting import eventually


@pytest.mark.gen_test
async def test_presence_of_one_process_is_its_share_and_goes_when_it_has_none(make_backend):
    backend, recorder = await subscribed_backend(make_backend, "lobby")
    share = RoomPresence(3, ("ann", "bob"))
    assert await backend.presence("lobby", share, changed=True) == share
    assert await backend.presence("lobby", share, changed=False) == share
    assert await backend.presence("lobby", RoomPresence(0, ()), changed=True) == RoomPresence(0, ())
    assert await backend.presence("other", RoomPresence(1, ()), changed=True) == RoomPresence(1, ())
    backend.relay("lobby", '{"type":"typing","handle":"ann"}')
    # A message stored after them is the marker: a backend of several processes sends signals and presence
    # notices on the room's own channel, ahead of the messages stored after them.
    [marker] = await fill(backend, "lobby", 1)
    await eventually(lambda: recorder.delivered)
    # A process hears neither its own signals nor its own presence notices: it delivers those itself.
    assert recorder.signals == [] and recorder.presence_changes == []
    assert recorder.delivered == [marker]

"""The audit log every backend keeps (``Backend.record_audit``, ``Backend.audit_page``), run against every
factory in tests/support/factories/ through the shared ``make_backend`` fixture."""

from __future__ import annotations

from datetime import datetime

import pytest

from backends.audit import AuditAction, AuditEntry
from backends.base import Backend
from rooms.room.moderation import RoomModeration
from tests.support.messages import store
from tests.support.recorder import Recorder

ACTIONS = [
    AuditAction("alice", "ban", None, "spam", {"ban_id": "1", "handle": "spammer", "address": None, "seconds": None}),
    AuditAction("token:1a2b3c4d", "delete", "lobby", None, {"message_id": "17"}),
    AuditAction("user-7", "lock", "lobby"),
    AuditAction(
        "Zoë 🚀", "ban", "café", "répété ✓", {"ban_id": "2", "handle": None, "address": "2001:db8::/64", "seconds": 60}
    ),
    AuditAction("alice", "invite", "team-a", None, {"seconds": 604800, "expires": "2026-12-13T17:00:00+00:00"}),
]


async def record_all(backend: Backend, actions: list[AuditAction]) -> list[AuditEntry]:
    return [await backend.record_audit(action) for action in actions]


def as_recorded(entry: AuditEntry) -> AuditAction:
    return AuditAction(entry.actor, entry.action, entry.room, entry.reason, dict(entry.details))


@pytest.mark.gen_test(timeout=20)
async def test_an_entry_comes_back_exactly_as_recorded_with_an_increasing_id_and_the_time(make_backend):
    backend = await make_backend()
    assert await backend.audit_page(10) == []
    recorded = await record_all(backend, ACTIONS)
    assert [as_recorded(entry) for entry in recorded] == ACTIONS
    ids = [entry.id for entry in recorded]
    assert all(isinstance(entry_id, int) and entry_id > 0 for entry_id in ids) and ids == sorted(set(ids))
    times = [datetime.fromisoformat(entry.at) for entry in recorded]
    assert times == sorted(times) and all(moment.utcoffset() is not None and not moment.utcoffset() for moment in times)
    assert await backend.audit_page(10) == list(reversed(recorded))


@pytest.mark.gen_test(timeout=20)
async def test_pages_run_newest_first_and_before_an_id_reads_older_ones(make_backend):
    backend = await make_backend()
    recorded = await record_all(backend, [AuditAction("alice", "lock", f"room-{n}") for n in range(7)])
    newest_first = list(reversed(recorded))
    first = await backend.audit_page(3)
    second = await backend.audit_page(3, before=first[-1].id)
    third = await backend.audit_page(3, before=second[-1].id)
    assert (first, second, third) == (newest_first[:3], newest_first[3:6], newest_first[6:])
    assert await backend.audit_page(3, before=recorded[0].id) == []
    assert await backend.audit_page(3, before=recorded[-1].id + 1000) == newest_first[:3]  # no such id: older ones


@pytest.mark.gen_test(timeout=30)
async def test_only_the_newest_audit_keep_entries_are_kept(make_backend):
    backend = await make_backend(audit_keep=3)
    recorded = await record_all(
        backend, [AuditAction("alice", "delete", "lobby", None, {"message_id": str(n)}) for n in range(8)]
    )
    assert await backend.audit_page(100) == list(reversed(recorded[-3:]))
    assert await backend.audit_page(100, before=recorded[-3].id) == []
    newer = await backend.record_audit(AuditAction("bob", "unlock", "lobby"))
    assert newer.id > recorded[-1].id
    assert await backend.audit_page(100) == [newer, *reversed(recorded[-2:])]


@pytest.mark.gen_test(timeout=30)
async def test_every_moderator_action_of_the_room_layer_is_kept_with_who_took_it(make_backend):
    backend = await make_backend()
    backend.set_delivery_target(Recorder())
    moderation = RoomModeration(backend)
    message = (await store(backend, "lobby", "spammer", "buy now", None)).message
    assert await moderation.delete_message("lobby", message.id, "alice")
    assert not await moderation.delete_message("lobby", message.id, "alice")  # nothing deleted: nothing kept
    ban = await moderation.ban(None, "203.0.113.0/24", "lobby", 600, "flooding", "user-7")
    assert await moderation.lift_ban(ban, "token:1a2b3c4d")
    await moderation.set_locked("lobby", True, "alice")
    await moderation.set_locked("lobby", False, "alice")
    await moderation.invited("team-a", 3600, "2026-12-06T18:00:00+00:00", "user-7")
    moderation.close()
    kept = [as_recorded(entry) for entry in reversed(await backend.audit_page(50))]
    assert kept == [
        AuditAction("alice", "delete", "lobby", None, {"message_id": message.id}),
        AuditAction(
            "user-7",
            "ban",
            "lobby",
            "flooding",
            {"ban_id": ban.id, "handle": None, "address": "203.0.113.0/24", "seconds": 600},
        ),
        AuditAction(
            "token:1a2b3c4d", "lift", "lobby", None, {"ban_id": ban.id, "handle": None, "address": "203.0.113.0/24"}
        ),
        AuditAction("alice", "lock", "lobby"),
        AuditAction("alice", "unlock", "lobby"),
        AuditAction("user-7", "invite", "team-a", None, {"seconds": 3600, "expires": "2026-12-06T18:00:00+00:00"}),
    ]

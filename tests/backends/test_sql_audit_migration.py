"""A database of schema version 5 (before the audit log) gains ``audit_log`` in place, keeping what it held,
on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import pytest

from backends.audit import AuditAction
from backends.sql.migrations import SCHEMA_VERSION
from tests.support.factories.sql import run_sql, sql_backend
from tests.support.messages import store


@pytest.mark.gen_test(timeout=60)
async def test_a_version_5_database_gains_the_audit_log_in_place(sql_factory):
    url = sql_factory.new_url()
    backend = sql_backend(url)
    await backend.start()
    try:
        kept = (await store(backend, "lobby", "ann", "from version 5", "c-1")).message
        ban = await backend.add_ban("spammer", None, None, None, "spam")
    finally:
        await backend.close()
    run_sql(url, "DROP TABLE audit_log", "UPDATE schema_version SET version = 5")  # what version 5 left

    migrated = sql_backend(url, audit_keep=2)
    await migrated.start()
    try:
        assert (await migrated.history("lobby", 10)).messages == [kept]
        assert await migrated.bans() == [ban]
        recorded = [await migrated.record_audit(AuditAction("alice", "lock", f"room-{n}")) for n in range(3)]
        assert await migrated.audit_page(10) == list(reversed(recorded[1:]))
    finally:
        await migrated.close()
    assert run_sql(url, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]
    assert run_sql(url, "SELECT COUNT(*) FROM audit_log") == [(2,)]

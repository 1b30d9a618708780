"""A database server that refuses rooms for a reason no retry mends stops the server (and ``check-config
--connect``) at once: exit 2 and one line naming the URL, its password masked, and the server's reason. A
wrong password, a role or database that does not exist (PostgreSQL, MariaDB), Redis's AUTH.

``backend.connect_timeout`` is 60 s and each process is given 45 s: one that retried would not end in time."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import psycopg2
import pymysql
import pytest

from rooms.config.masking import MASK
from tests.support.factories import service_unreachable
from tests.support.factories.sql import MARIADB, POSTGRESQL, unique_name
from tests.support.processes import run_server
from tests.support.redis import PrivateRedis
from tests.support.sentinel import SentinelSet

PATIENT = "backend:\n  connect_timeout: 60\n"
NO_RETRY_SECONDS = 45
COMMANDS = [("serve",), ("check-config", "--connect")]
PASSWORD = "not-the-password-7f3a"


def require_postgresql() -> None:
    try:
        psycopg2.connect(connect_timeout=5, **POSTGRESQL).close()
    except psycopg2.OperationalError as exc:
        service_unreachable("PostgreSQL at 127.0.0.1:5432", str(exc).strip().splitlines()[0])


def require_mariadb() -> None:
    try:
        pymysql.connect(connect_timeout=5, **MARIADB).close()
    except pymysql.err.OperationalError as exc:
        service_unreachable("MariaDB at 127.0.0.1:3306", str(exc))


def refusal_line(command: tuple[str, ...], url: str, shown: str) -> str:
    """The one line of stderr of ``command`` run on ``url``, which must exit 2 and name ``shown``."""
    result = run_server(*command, "--backend", url, config=PATIENT, timeout=NO_RETRY_SECONDS)
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"rooms: backend {shown} refused: "), line
    assert PASSWORD not in line
    return line


@pytest.mark.parametrize("command", COMMANDS)
def test_postgresql_role_that_does_not_exist_with_a_password_exits_2_at_once(command):
    require_postgresql()
    role = unique_name()
    where = f"{POSTGRESQL['host']}:{POSTGRESQL['port']}/{POSTGRESQL['dbname']}"
    line = refusal_line(command, f"postgresql://{role}:{PASSWORD}@{where}", f"postgresql://{role}:{MASK}@{where}")
    assert f'role "{role}" does not exist' in line


@pytest.mark.parametrize("command", COMMANDS)
def test_postgresql_database_that_does_not_exist_exits_2_at_once(command):
    require_postgresql()
    url = f"postgresql://{POSTGRESQL['user']}@{POSTGRESQL['host']}:{POSTGRESQL['port']}/{unique_name()}"
    assert "does not exist" in refusal_line(command, url, url)


@pytest.mark.parametrize("command", COMMANDS)
def test_mariadb_wrong_password_exits_2_at_once(command):
    require_mariadb()
    where = f"{MARIADB['host']}:{MARIADB['port']}/{MARIADB['database']}"
    line = refusal_line(command, f"mysql://root:{PASSWORD}@{where}", f"mysql://root:{MASK}@{where}")
    assert "Access denied for user 'root'" in line and "1045" in line


@pytest.mark.parametrize("command", COMMANDS)
def test_mariadb_database_that_does_not_exist_exits_2_at_once(command):
    require_mariadb()
    database = unique_name()
    url = f"mysql://root@{MARIADB['host']}:{MARIADB['port']}/{database}"
    assert f"Unknown database '{database}'" in refusal_line(command, url, url)


@contextlib.asynccontextmanager
async def guarded_redis() -> AsyncIterator[PrivateRedis]:
    """A redis-server of the test's own that takes only clients giving its password."""
    server = await PrivateRedis(password="the-right-password").start()
    try:
        yield server
    finally:
        server.remove()


@pytest.mark.gen_test(timeout=120)
@pytest.mark.parametrize("command", COMMANDS)
async def test_redis_wrong_password_exits_2_at_once(command):
    async with guarded_redis() as server:
        where = f"127.0.0.1:{server.port}/0"
        line = refusal_line(command, f"redis://:{PASSWORD}@{where}", f"redis://:{MASK}@{where}")
    assert "invalid username-password pair" in line


@pytest.mark.gen_test(timeout=120)
@pytest.mark.parametrize("command", COMMANDS)
async def test_redis_that_needs_a_password_the_url_does_not_give_exits_2_at_once(command):
    async with guarded_redis() as server:
        url = f"redis://127.0.0.1:{server.port}/0"
        line = refusal_line(command, url, url)
    assert "authenticat" in line.lower()


@pytest.mark.gen_test(timeout=120)
async def test_redis_database_it_does_not_have_exits_2_at_once():
    async with guarded_redis() as server:
        where = f"127.0.0.1:{server.port}/99"
        line = refusal_line(("serve",), f"redis://:the-right-password@{where}", f"redis://:{MASK}@{where}")
    assert "DB index is out of range" in line


@pytest.mark.gen_test(timeout=180)
async def test_redis_through_sentinel_with_a_database_its_master_does_not_have_exits_2_at_once():
    sentinels = await SentinelSet().start()
    try:
        url = sentinels.url(db=99)
        line = refusal_line(("check-config", "--connect"), url, url)
    finally:
        sentinels.remove()
    assert "DB index is out of range" in line


@pytest.mark.gen_test(timeout=180)
async def test_redis_through_sentinel_with_a_wrong_password_for_its_master_exits_2_at_once():
    sentinels = await SentinelSet(password="the-right-password").start()
    try:
        hosts, master = sentinels.url().removeprefix("redis+sentinel://").split("/", 1)
        line = refusal_line(
            ("serve",), f"redis+sentinel://:{PASSWORD}@{hosts}/{master}", f"redis+sentinel://:{MASK}@{hosts}/{master}"
        )
    finally:
        sentinels.remove()
    assert "invalid username-password pair" in line

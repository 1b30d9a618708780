"""A SQLite path rooms cannot write stops the server (and ``check-config --connect``) at once: exit 2 and
one line naming the URL and what is wrong with the path, where an unreachable database server is retried.

``backend.connect_timeout`` is 60 s and each process is given 45 s: one that retried would not end in time."""

from __future__ import annotations

import pytest

from tests.support.processes import run_server

PATIENT = "backend:\n  connect_timeout: 60\n"
NO_RETRY_SECONDS = 45


def refusal_line(result, url: str) -> str:
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"rooms: backend {url} refused: "), line
    return line


@pytest.mark.parametrize("command", [(), ("serve",), ("check-config", "--connect")])
def test_a_sqlite_file_in_a_directory_that_does_not_exist_exits_2_at_once(tmp_path, command):
    directory = tmp_path / "no" / "such"
    url = f"sqlite:///{directory}/rooms.db"
    result = run_server(*command, "--backend", url, config=PATIENT, timeout=NO_RETRY_SECONDS)
    line = refusal_line(result, url)
    assert f"the directory {directory} does not exist" in line


def test_a_sqlite_file_under_a_file_exits_2_at_once(tmp_path):
    (tmp_path / "plain").write_text("not a directory")
    url = f"sqlite:///{tmp_path}/plain/rooms.db"
    result = run_server("--backend", url, config=PATIENT, timeout=NO_RETRY_SECONDS)
    assert f"{tmp_path}/plain is not a directory" in refusal_line(result, url)


def test_a_sqlite_path_that_is_a_directory_exits_2_at_once(tmp_path):
    (tmp_path / "rooms.db").mkdir()
    url = f"sqlite:///{tmp_path}/rooms.db"
    result = run_server("check-config", "--connect", "--backend", url, config=PATIENT, timeout=NO_RETRY_SECONDS)
    assert "it is a directory" in refusal_line(result, url)


def test_a_file_that_is_not_a_database_exits_2_at_once(tmp_path):
    (tmp_path / "rooms.db").write_bytes(b"this is no SQLite database, but long enough to have a header. " * 20)
    url = f"sqlite:///{tmp_path}/rooms.db"
    result = run_server("--backend", url, config=PATIENT, timeout=NO_RETRY_SECONDS)
    assert "is not a SQLite database" in refusal_line(result, url)


def test_check_config_connect_reaches_a_writable_sqlite_and_says_so(tmp_path):
    url = f"sqlite:///{tmp_path}/rooms.db"
    result = run_server("check-config", "--connect", "--backend", url, timeout=NO_RETRY_SECONDS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == f"# backend reached: {url}"

"""``server.py --backup`` / ``--restore``: a live SQLite database backed up while messages keep coming, and
restored into a server that serves every message acknowledged before the backup began."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from backends.sql import backup as sqlite_backup
from backends.sql.backup import BackupRefused
from tests.support.processes import ROOT, ServerProcess, clean_environment, run_server
from tests.support.waiting import eventually

LIMITS = "limits:\n  messages_per_second: 1000\n  burst: 1000\n"


def cli(*args: str, cwd: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "server.py"), *args],
        cwd=cwd,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def make_rooms_database(path: Path, messages: list[str]) -> None:
    """A small database with rooms' tables, written in WAL mode as the server writes it."""
    database = sqlite3.connect(path, isolation_level=None)
    try:
        database.execute("PRAGMA journal_mode=WAL")
        database.execute("CREATE TABLE rooms (id INTEGER PRIMARY KEY, label TEXT)")
        database.execute("CREATE TABLE messages (id INTEGER PRIMARY KEY, message TEXT)")
        database.execute("CREATE TABLE schema_version (version INTEGER)")
        database.executemany("INSERT INTO messages (message) VALUES (?)", [(m,) for m in messages])
    finally:
        database.close()


def stored_messages(path: Path) -> list[str]:
    database = sqlite3.connect(path)
    try:
        return [row[0] for row in database.execute("SELECT message FROM messages ORDER BY id")]
    finally:
        database.close()


async def history(base_url: str, room: str) -> list[str]:
    """Every message of ``room`` through the API, oldest first, paged with ``?after=``."""
    client = AsyncHTTPClient()
    found: list[str] = []
    after = 0
    while True:
        page = json.loads((await client.fetch(f"{base_url}/api/rooms/{room}/messages?after={after}&limit=200")).body)
        found.extend(message["message"] for message in page["messages"])
        if not page["has_more"]:
            return found
        after = page["messages"][-1]["id"]


@pytest.mark.gen_test(timeout=120)
async def test_a_backup_taken_while_messages_arrive_restores_every_message_acknowledged_before_it(
    tmp_path: Path,
) -> None:
    server = ServerProcess("sqlite:///rooms.db", config=LIMITS)
    acknowledged: list[str] = []
    posting = True

    async def post_all_the_time() -> None:
        client = AsyncHTTPClient()
        url = f"{server.base_url}/api/rooms/lobby/messages"
        n = 0
        while posting:
            text = f"m{n}"
            n += 1
            try:
                response = await client.fetch(
                    url,
                    method="POST",
                    body=json.dumps({"handle": "ann", "message": text}),
                    headers={"Content-Type": "application/json"},
                )
            except HTTPClientError:
                continue  # not acknowledged, so not promised to be in the backup
            if response.code == 201:
                acknowledged.append(text)

    backup_path = tmp_path / "rooms-backup.db"
    try:
        server.wait_healthy()
        poster = asyncio.create_task(post_all_the_time())
        await eventually(lambda: len(acknowledged) >= 300, timeout=30)
        before_backup = list(acknowledged)
        command = await asyncio.create_subprocess_exec(
            sys.executable, os.path.join(ROOT, "server.py"),
            "--config", "rooms.yaml", "--backend", "sqlite:///rooms.db", "--backup", str(backup_path),
            cwd=server.workdir.name, env=clean_environment(),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await command.communicate()
        assert command.returncode == 0, err.decode()
        assert out.decode().splitlines() == [f"rooms: backed up rooms.db to {backup_path}"]
        after_backup = len(acknowledged)
        await eventually(lambda: len(acknowledged) >= after_backup + 100, timeout=30)  # the server kept going
        posting = False
        await poster
    finally:
        server.stop()
    # Nothing half-written beside it, and the one file is the whole backup.
    assert sorted(os.listdir(tmp_path)) == ["rooms-backup.db"]

    restored_dir = tmp_path / "restored"
    restored_dir.mkdir()
    result = cli("--backend", "sqlite:///rooms.db", "--restore", str(backup_path), cwd=restored_dir)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"rooms: restored {backup_path} into rooms.db"]

    restored = restored_dir / "rooms.db"
    server = ServerProcess(f"sqlite:///{restored}")  # an absolute path: sqlite:////...
    try:
        server.wait_healthy()
        served = await history(server.base_url, "lobby")
    finally:
        server.stop()
    missing = [text for text in before_backup if text not in set(served)]
    assert not missing, f"{len(missing)} acknowledged messages missing, first {missing[:5]}"
    assert len(served) == len(set(served))
    database = sqlite3.connect(restored)
    try:
        assert database.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        database.close()


def test_backup_refuses_an_existing_destination_and_leaves_it_alone(tmp_path: Path) -> None:
    make_rooms_database(tmp_path / "rooms.db", ["hi"])
    (tmp_path / "taken.db").write_bytes(b"keep me")
    result = cli("--backend", "sqlite:///rooms.db", "--backup", "taken.db", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["rooms: taken.db already exists; not overwriting it"]
    assert (tmp_path / "taken.db").read_bytes() == b"keep me"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"just some text, not a database\n" * 100, "is not a SQLite database"),
        (None, "is not a rooms database (no rooms, schema_version table)"),
    ],
)
def test_restore_refuses_a_file_that_is_not_a_rooms_database(
    tmp_path: Path, content: bytes | None, reason: str
) -> None:
    candidate = tmp_path / "candidate.db"
    if content is None:
        database = sqlite3.connect(candidate)
        database.execute("CREATE TABLE messages (id INTEGER PRIMARY KEY)")
        database.close()
    else:
        candidate.write_bytes(content)
    result = cli("--backend", "sqlite:///rooms.db", "--restore", "candidate.db", cwd=tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("rooms: candidate.db ") and reason in line, line
    assert not (tmp_path / "rooms.db").exists()


@pytest.mark.parametrize(
    ("args", "env", "tool"),
    [
        (("--backup", "out.db"), {"ROOMS_BACKEND_URL": "memory://"}, "pg_dump / mariadb-dump / redis-cli --rdb"),
        (("--backup", "out.db", "--backend", "postgresql://rooms@localhost/rooms"), {}, "use pg_dump"),
        (("--restore", "out.db", "--backend", "postgresql://rooms@localhost/rooms"), {}, "use pg_dump"),
        (("--backup", "out.db", "--backend", "mariadb://rooms@localhost/rooms"), {}, "mariadb-dump"),
        (("--backup", "out.db", "--backend", "redis://localhost:6379/0"), {}, "redis-cli --rdb"),
    ],
)
def test_a_backend_that_is_not_sqlite_is_refused_naming_the_tool_to_use(
    args: tuple[str, ...], env: dict[str, str], tool: str
) -> None:
    result = run_server(*args, env=clean_environment(**env))
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert "not SQLite" in line and tool in line and "see docs/operating.md" in line, line
    assert result.stdout == ""


def test_a_config_error_exits_2_without_backing_up(tmp_path: Path) -> None:
    result = run_server("--backup", str(tmp_path / "out.db"), config="backend:\n  url: ftp://x\n")
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("rooms: config error: backend.url")
    assert not (tmp_path / "out.db").exists()


def test_backup_and_restore_read_the_database_from_the_config_file(tmp_path: Path) -> None:
    make_rooms_database(tmp_path / "live.db", ["a", "b"])
    (tmp_path / "rooms.yaml").write_text(f"backend:\n  url: sqlite:///{tmp_path / 'live.db'}\n")
    backed_up = cli("--config", "rooms.yaml", "--backup", "copy.db", cwd=tmp_path)
    assert backed_up.returncode == 0, backed_up.stderr
    (tmp_path / "rooms.yaml").write_text(f"backend:\n  url: sqlite:///{tmp_path / 'new.db'}\n")
    restored = cli("--config", "rooms.yaml", "--restore", "copy.db", cwd=tmp_path)
    assert restored.returncode == 0, restored.stderr
    assert stored_messages(tmp_path / "new.db") == ["a", "b"]


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///rooms.db", "rooms.db"),
        ("sqlite:///data/rooms.db", "data/rooms.db"),
        ("sqlite:////var/lib/rooms/rooms.db", "/var/lib/rooms/rooms.db"),
        ("SQLITE:///rooms.db", "rooms.db"),
    ],
)
def test_database_path_reads_backend_url_as_the_server_does(url: str, path: str) -> None:
    assert sqlite_backup.database_path(url) == path


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_a_sqlite_url_without_a_file_is_refused(url: str) -> None:
    with pytest.raises(BackupRefused, match="names no database file"):
        sqlite_backup.database_path(url)


def test_a_backup_is_one_self_contained_file_in_delete_mode(tmp_path: Path) -> None:
    live = tmp_path / "live.db"
    make_rooms_database(live, ["one", "two"])
    (tmp_path / "out").mkdir()
    holder = sqlite3.connect(live)  # keeps live.db-wal in place, as a running server does
    try:
        holder.execute("INSERT INTO messages (message) VALUES ('three')")
        holder.commit()
        sqlite_backup.backup(str(live), str(tmp_path / "out" / "backup.db"))
    finally:
        holder.close()
    assert os.listdir(tmp_path / "out") == ["backup.db"]
    database = sqlite3.connect(tmp_path / "out" / "backup.db")
    try:
        assert database.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    finally:
        database.close()
    assert stored_messages(tmp_path / "out" / "backup.db") == ["one", "two", "three"]


def test_a_backup_of_many_steps_finishes_while_another_connection_keeps_committing(tmp_path: Path) -> None:
    live = tmp_path / "live.db"
    make_rooms_database(live, ["x" * 4000] * 2000)  # about 2000 pages: several steps of the copy
    writing = threading.Event()
    stop = threading.Event()

    def write_all_the_time() -> None:
        writer = sqlite3.connect(live, isolation_level=None)
        try:
            while not stop.is_set():
                writer.execute("INSERT INTO messages (message) VALUES ('late')")
                writing.set()
        finally:
            writer.close()

    writer = threading.Thread(target=write_all_the_time)
    writer.start()
    try:
        assert writing.wait(10)
        # Without one read transaction over the copy, each commit between two steps would restart it.
        copier = threading.Thread(target=sqlite_backup.backup, args=(str(live), str(tmp_path / "backup.db")))
        copier.start()
        copier.join(30)
        finished = not copier.is_alive()
    finally:
        stop.set()
        writer.join()
    copier.join()
    assert finished, "the backup did not finish while a writer kept committing"
    copied = stored_messages(tmp_path / "backup.db")
    assert copied[:2000] == ["x" * 4000] * 2000 and set(copied[2000:]) <= {"late"}
    assert len(copied) < len(stored_messages(live))  # a snapshot from its start, not what came after


def test_backup_of_a_missing_database_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(BackupRefused, match="no database at"):
        sqlite_backup.backup(str(tmp_path / "absent.db"), str(tmp_path / "out.db"))
    assert os.listdir(tmp_path) == []


def test_restore_refuses_a_database_in_use(tmp_path: Path) -> None:
    make_rooms_database(tmp_path / "backup.db", ["old"])
    make_rooms_database(tmp_path / "live.db", ["live"])
    server_connection = sqlite3.connect(tmp_path / "live.db")
    try:
        server_connection.execute("SELECT count(*) FROM messages").fetchone()
        with pytest.raises(BackupRefused, match="is in use: stop rooms before --restore"):
            sqlite_backup.restore(str(tmp_path / "backup.db"), str(tmp_path / "live.db"))
    finally:
        server_connection.close()
    assert stored_messages(tmp_path / "live.db") == ["live"]


def test_restore_replaces_a_stopped_database_and_drops_its_stale_log(tmp_path: Path) -> None:
    make_rooms_database(tmp_path / "source.db", ["from the backup"])
    sqlite_backup.backup(str(tmp_path / "source.db"), str(tmp_path / "backup.db"))
    make_rooms_database(tmp_path / "live.db", ["replaced"])
    # A log and index left by a crash: read into the restored file, they would bring back old pages.
    (tmp_path / "live.db-wal").write_bytes(b"\0" * 4096)
    (tmp_path / "live.db-shm").write_bytes(b"\0" * 32768)
    sqlite_backup.restore(str(tmp_path / "backup.db"), str(tmp_path / "live.db"))
    assert sorted(os.listdir(tmp_path)) == ["backup.db", "live.db", "source.db"]
    assert stored_messages(tmp_path / "live.db") == ["from the backup"]

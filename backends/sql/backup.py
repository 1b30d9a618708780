"""Back up a live SQLite database and restore one: ``python server.py --backup PATH`` / ``--restore PATH``.

Both use SQLite's online backup API, never a file copy: a copy of a WAL database taken while rooms writes
may miss the commits still in ``-wal`` or catch a page half-written.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from urllib.parse import quote, urlsplit

PAGES_PER_STEP = 256  # 1 MiB of 4 KiB pages
STEP_PAUSE_SECONDS = 0.005
BUSY_TIMEOUT_SECONDS = 5
ROOMS_TABLES = ("rooms", "messages", "schema_version")
EXIT_FAILED = 1
EXIT_REFUSED = 2
# What backs up the stores that are not a file of rooms' own.
TOOLS = {
    "postgresql": "use pg_dump",
    "postgres": "use pg_dump",
    "mysql": "use mariadb-dump --single-transaction",
    "mariadb": "use mariadb-dump --single-transaction",
    "redis": "use redis-cli --rdb",
    "rediss": "use redis-cli --rdb",
    "redis+sentinel": "use redis-cli --rdb (on the master)",
    "redis+cluster": "use redis-cli --rdb on each master",
}
ALL_TOOLS = "use pg_dump / mariadb-dump / redis-cli --rdb"


class BackupRefused(Exception):
    """A backup or restore that must not go ahead (the message is one readable line)."""


def database_path(url: str) -> str:
    """The file a ``sqlite://`` ``backend.url`` names: ``sqlite:///rel`` (working directory), ``sqlite:////abs``."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme != "sqlite":
        tool = TOOLS.get(scheme, f"memory:// keeps nothing on disk; for a database server {ALL_TOOLS}")
        raise BackupRefused(f"backend.url is {scheme}://, not SQLite: {tool}, see docs/operating.md (Backups)")
    # playhouse.db_url reads the path the same way: the first slash separates it from the empty host.
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if not path or path == ":memory:":
        raise BackupRefused(f"backend.url {url!r} names no database file")
    return path


def _connect(path: str, mode: str) -> sqlite3.Connection:
    """A connection that never creates ``path`` (``mode``: ro or rw); statements run outside transactions."""
    uri = f"file:{quote(os.path.abspath(path))}?mode={mode}"
    return sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)


def _pause_between_steps(status: int, remaining: int, total: int) -> None:
    # Leaves the disk to the server's commits between steps (the backup API pauses only when busy).
    if remaining:
        time.sleep(STEP_PAUSE_SECONDS)


def _copy(source: sqlite3.Connection, destination_path: str) -> None:
    """The backup API from ``source`` into a new file ``destination_path``, which ends up in DELETE mode."""
    target = sqlite3.connect(destination_path, isolation_level=None)
    try:
        source.backup(target, pages=PAGES_PER_STEP, progress=_pause_between_steps)
        # The copy keeps the source's WAL mode; DELETE makes the one file the whole database.
        target.execute("PRAGMA journal_mode=DELETE")
    finally:
        target.close()


def _fsync(path: str) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def _temporary_beside(path: str) -> Iterator[str]:
    """A fresh name in ``path``'s directory (so a rename keeps it on one file system), removed if left over."""
    directory = os.path.dirname(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".partial", dir=directory)
    os.close(descriptor)
    try:
        yield temporary
    finally:
        for leftover in (temporary, f"{temporary}-journal", f"{temporary}-wal", f"{temporary}-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(leftover)


def backup(database_path: str, destination_path: str) -> None:
    """Copy a rooms SQLite database, live or not, into the new file ``destination_path``.

    One read transaction spans the copy: the backup is the database as of its start, and the copy never
    restarts for the commits that land meanwhile (WAL readers do not hold up the writer).
    """
    if os.path.lexists(destination_path):
        raise BackupRefused(f"{destination_path} already exists; not overwriting it")
    if not os.path.isfile(database_path):
        raise BackupRefused(f"no database at {database_path}")
    source = _connect(database_path, "rw")
    try:
        source.execute("BEGIN")
        source.execute("SELECT count(*) FROM sqlite_master").fetchone()
        with _temporary_beside(destination_path) as temporary:
            _copy(source, temporary)
            _fsync(temporary)
            # A link, unlike a rename, refuses a destination that appeared meanwhile; until it is made,
            # nothing at destination_path looks like a finished backup.
            try:
                os.link(temporary, destination_path)
            except FileExistsError:
                raise BackupRefused(f"{destination_path} already exists; not overwriting it") from None
        _fsync(os.path.dirname(os.path.abspath(destination_path)))
    finally:
        source.close()


def check_backup(backup_path: str) -> None:
    """Refuse anything but a sound rooms database."""
    if not os.path.isfile(backup_path):
        raise BackupRefused(f"no backup at {backup_path}")
    try:
        connection = _connect(backup_path, "ro")
        try:
            verdict = connection.execute("PRAGMA integrity_check").fetchall()
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        raise BackupRefused(f"{backup_path} is not a SQLite database ({exc})") from None
    if verdict != [("ok",)]:
        raise BackupRefused(f"{backup_path} fails its integrity check: {verdict[0][0]}")
    missing = [name for name in ROOMS_TABLES if name not in tables]
    if missing:
        raise BackupRefused(f"{backup_path} is not a rooms database (no {', '.join(missing)} table)")


def _check_not_in_use(database_path: str) -> None:
    """Refuse a database some process has open: a running rooms would go on with what it had cached."""
    if not os.path.exists(database_path):
        return
    connection = sqlite3.connect(database_path, timeout=0, isolation_level=None)
    try:
        # Every open WAL connection holds a shared lock on the file; an exclusive one waits for none of them.
        connection.execute("PRAGMA locking_mode=EXCLUSIVE")
        connection.execute("BEGIN EXCLUSIVE")
        connection.execute("ROLLBACK")
    except sqlite3.DatabaseError as exc:
        if exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            raise BackupRefused(f"{database_path} is in use: stop rooms before --restore") from None
        # Not a sound database (the reason to restore, maybe): nothing there to keep.
    finally:
        connection.close()


def restore(backup_path: str, database_path: str) -> None:
    """Replace the database at ``database_path`` (rooms stopped) with the backup at ``backup_path``."""
    check_backup(backup_path)
    _check_not_in_use(database_path)
    source = _connect(backup_path, "ro")
    try:
        with _temporary_beside(database_path) as temporary:
            _copy(source, temporary)
            _fsync(temporary)
            # A log left beside the old file would be read into the restored one.
            for stale in (f"{database_path}-wal", f"{database_path}-shm", f"{database_path}-journal"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(stale)
            os.replace(temporary, database_path)
        _fsync(os.path.dirname(os.path.abspath(database_path)))
    finally:
        source.close()


def run(url: str, backup_to: str | None, restore_from: str | None) -> int:
    """``--backup`` / ``--restore`` for the database ``url`` names: one line out, and the exit status."""
    try:
        path = database_path(url)
        if backup_to is not None:
            backup(path, backup_to)
            print(f"rooms: backed up {path} to {backup_to}")
        elif restore_from is not None:
            restore(restore_from, path)
            print(f"rooms: restored {restore_from} into {path}")
    except BackupRefused as exc:
        print(f"rooms: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except (sqlite3.Error, OSError) as exc:
        print(f"rooms: {'backup' if backup_to is not None else 'restore'} failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return 0

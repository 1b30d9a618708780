"""Which failures at start no retry mends: the SQL backend's half of ``BackendRefused``.

A database server that is down or restarting is worth waiting for; one that says the password is wrong,
or that the database does not exist, says the same on every try. Each driver tells these apart its own
way: SQLite by its error code, PyMySQL by the server's error number, psycopg2 by the SQLSTATE of a
statement or, for a connection it refused, only by the text of the message.
"""

from __future__ import annotations

import os
import sqlite3

import peewee

# sqlite3's primary result codes (the low byte of ``sqlite_errorcode``).
SQLITE_PERM = 3
SQLITE_READONLY = 8
SQLITE_CANTOPEN = 14
SQLITE_AUTH = 23
SQLITE_NOTADB = 26
# MariaDB/MySQL: access denied (to the server, to the database), unknown database, an account that takes
# no password (unix_socket), an authentication method the driver lacks.
MYSQL_REFUSALS = {1044, 1045, 1049, 1698, 1251}
# PostgreSQL: invalid authorization (class 28), no such database, no privilege (to connect, to create).
POSTGRESQL_REFUSED_STATES = ("28", "3D000", "42501")
# psycopg2 gives a connection the server refused no SQLSTATE; its message is all there is.
POSTGRESQL_REFUSED_TEXTS = (
    "authentication failed",
    "does not exist",  # the role, or the database
    "no pg_hba.conf entry",
    "no password supplied",
    "permission denied",
)


def refusal_reason(kind: str, database: peewee.Database, error: BaseException | None) -> str | None:
    """Why ``error`` (what a query at start raised) is one no retry mends, in one line; None if a retry
    might (the server is down, a lock is held, the network is cut)."""
    driver_error = _driver_error(error)
    if driver_error is None:
        return None
    message = first_line(driver_error)
    if kind == "sqlite" and isinstance(driver_error, sqlite3.Error):
        return _sqlite_reason(str(database.database), driver_error, message)
    if kind == "mysql" and len(driver_error.args) == 2 and driver_error.args[0] in MYSQL_REFUSALS:
        number, text = driver_error.args
        return f"{text} (error {number})"
    if kind == "postgresql":
        state = getattr(driver_error, "pgcode", None)
        if state:
            return message if state.startswith(POSTGRESQL_REFUSED_STATES) else None
        if any(text in message for text in POSTGRESQL_REFUSED_TEXTS):
            return message
    return None


def _driver_error(error: BaseException | None) -> BaseException | None:
    """The driver's own exception: peewee raises its own while handling it."""
    while isinstance(error, peewee.PeeweeException):
        error = error.__cause__ or error.__context__
    return error


def _sqlite_reason(path: str, error: sqlite3.Error, message: str) -> str | None:
    code = getattr(error, "sqlite_errorcode", 0) & 0xFF
    if code == SQLITE_CANTOPEN:
        return _cannot_open(path, message)
    if code == SQLITE_READONLY:
        return f"{path} is read-only ({message})"
    if code == SQLITE_NOTADB:
        return f"{path} is not a SQLite database ({message})"
    if code in (SQLITE_PERM, SQLITE_AUTH):
        return f"{path}: {message}"
    return None


def _cannot_open(path: str, message: str) -> str:
    """SQLite says only "unable to open database file": say which part of the path is wrong."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.exists(directory):
        return f"cannot create {path}: the directory {directory} does not exist"
    if not os.path.isdir(directory):
        return f"cannot create {path}: {directory} is not a directory"
    if os.path.isdir(path):
        return f"cannot open {path}: it is a directory"
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"cannot write {path}: the directory {directory} is not writable by this user"
    if os.path.exists(path) and not os.access(path, os.R_OK | os.W_OK):
        return f"cannot open {path}: the file is not readable and writable by this user"
    return f"cannot open {path}: {message}"


def first_line(error: BaseException) -> str:
    """An error's first line (a driver's may run on with hints), or its type's name if it says nothing."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__

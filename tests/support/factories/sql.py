"""Factories for the SQL backend: SQLite in a temp file, PostgreSQL and MariaDB on the local services.

Every ``create`` gets storage of its own: a new file, a new PostgreSQL schema (chosen through the
URL's ``search_path``), or a new MariaDB database; ``dispose`` removes them all.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from typing import Any
from urllib.parse import quote

import psycopg2
import pymysql

from backends import create_backend
from backends.base import BackendOptions
from backends.sql.backend import SQLBackend
from backends.sql.database import open_database
from tests.support.factories import service_unreachable

POSTGRESQL = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "test"}
MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": "", "database": "test"}


def sql_backend(url: str, **options: Any) -> SQLBackend:
    """The SQL backend for ``url``, built as the server builds it: from ``BackendOptions`` (``retain_per_room``,
    ``quota``, and ``settings`` holding the config's ``backend`` keys, e.g. ``sqlite_synchronous``)."""
    backend = create_backend(BackendOptions(url, **options))
    assert isinstance(backend, SQLBackend)
    return backend


def unique_name() -> str:
    return f"rooms_test_{uuid.uuid4().hex[:12]}"


class SQLiteFactory:
    def __init__(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="rooms-sqlite-")

    def new_url(self, host: str | None = None, port: int | None = None) -> str:
        """A URL of an empty database file of its own."""
        return f"sqlite:///{os.path.join(self.directory, unique_name())}.db"

    async def create(self, **options: Any) -> SQLBackend:
        backend = sql_backend(self.new_url(), **options)
        await backend.start()
        return backend

    async def dispose(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


class PostgreSQLFactory:
    def __init__(self) -> None:
        self.schemas: list[str] = []

    def _admin(self) -> Any:
        try:
            connection = psycopg2.connect(connect_timeout=5, **POSTGRESQL)
        except psycopg2.OperationalError as exc:
            service_unreachable("PostgreSQL at 127.0.0.1:5432", str(exc).strip().splitlines()[0])
        connection.autocommit = True
        return connection

    def new_url(self, host: str | None = None, port: int | None = None) -> str:
        """A URL whose tables live in a new, empty schema; ``host``/``port`` reach the server another way
        (through a test's proxy)."""
        schema = unique_name()
        with self._admin() as connection, connection.cursor() as cursor:
            cursor.execute(f"CREATE SCHEMA {schema}")
        self.schemas.append(schema)
        where = f"{host or POSTGRESQL['host']}:{port or POSTGRESQL['port']}"
        options = quote(f"-csearch_path={schema}")
        return f"postgresql://{POSTGRESQL['user']}@{where}/{POSTGRESQL['dbname']}?options={options}"

    async def create(self, **options: Any) -> SQLBackend:
        backend = sql_backend(self.new_url(), **options)
        await backend.start()
        return backend

    async def dispose(self) -> None:
        if not self.schemas:
            return
        connection = self._admin()
        try:
            with connection.cursor() as cursor:
                for schema in self.schemas:
                    cursor.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        finally:
            connection.close()
        self.schemas.clear()


class MariaDBFactory:
    def __init__(self) -> None:
        self.databases: list[str] = []

    def _admin(self) -> Any:
        try:
            return pymysql.connect(connect_timeout=5, autocommit=True, **MARIADB)
        except pymysql.err.OperationalError as exc:
            service_unreachable("MariaDB at 127.0.0.1:3306", str(exc))

    def new_url(self, host: str | None = None, port: int | None = None) -> str:
        """A URL of a new, empty database; ``host``/``port`` reach the server another way."""
        database = unique_name()
        connection = self._admin()
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE {database}")
        finally:
            connection.close()
        self.databases.append(database)
        return f"mysql://{MARIADB['user']}@{host or MARIADB['host']}:{port or MARIADB['port']}/{database}"

    async def create(self, **options: Any) -> SQLBackend:
        backend = sql_backend(self.new_url(), **options)
        await backend.start()
        return backend

    async def dispose(self) -> None:
        if not self.databases:
            return
        connection = self._admin()
        try:
            with connection.cursor() as cursor:
                for database in self.databases:
                    cursor.execute(f"DROP DATABASE IF EXISTS {database}")
        finally:
            connection.close()
        self.databases.clear()


FACTORIES = {"sqlite": SQLiteFactory, "postgresql": PostgreSQLFactory, "mysql": MariaDBFactory}


def run_sql(url: str, *statements: str) -> list[tuple[Any, ...]]:
    """Runs ``statements`` in order on the database at ``url``, outside any backend (as an earlier release,
    or an operator, would); the rows of the last one (none if it returns none)."""
    database = open_database(url)
    try:
        rows: list[tuple[Any, ...]] = []
        for statement in statements:
            cursor = database.execute_sql(statement)
            rows = list(cursor.fetchall()) if cursor.description else []
        return rows
    finally:
        database.close()

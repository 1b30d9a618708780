"""Two ways to keep SQL off the event loop, measured on the same statements: rooms' worker threads, and
peewee 4's asyncio support (``playhouse.pwasyncio``: aiosqlite for SQLite, asyncpg for PostgreSQL).

Both routes group what is queued into one transaction (group commit) and run the very same writes
(``MessageWriter.write_batch``); only the bridge between the loop and the database differs:

* ``threads``: rooms' SQL backend, a writer thread with its own connection (``backends/sql/backend.py``);
* ``pwasyncio``: one writer coroutine that runs ``write_batch`` through ``AsyncDatabase.run``, whose
  queries the driver awaits (aiosqlite runs each SQLite call on a thread of its own and hands every
  result back to the loop; asyncpg speaks the PostgreSQL protocol on the loop).

In one process, with no sockets: ``--stores`` messages in 10 rooms, ``--in-flight`` of them waiting at
any time (the echo scenario's 50 senders x 10). Printed per route: stores per second, the event-loop
thread's CPU per store (what the route takes from the thread that also serves every socket), the whole
process's CPU per store, and store latency p50/p99.

pwasyncio's drivers (greenlet, aiosqlite, asyncpg) are in requirements-dev.txt, not among rooms' own.

    python -m bench.sql_routes --database sqlite
    python -m bench.sql_routes --database postgresql
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import peewee

from backends import create_backend
from backends.base import BackendOptions, NewMessage, StoreResult, utc_timestamp
from backends.sql.database import RoomsDatabase
from backends.sql.migrations import prepare_schema
from backends.sql.tables import build_schema
from backends.sql.writer import MessageWriter
from bench.servers import BENCH_DATABASE, POSTGRESQL_URL, fresh_sql_database

ROOMS = 10
Store = Callable[[str, str], Awaitable[StoreResult]]


async def drive(store: Store, total: int, in_flight: int) -> dict[str, Any]:
    """``in_flight`` workers store one message after another until ``total`` are stored."""
    latencies: list[float] = []
    issued = 0

    async def worker(number: int) -> None:
        nonlocal issued
        while issued < total:
            issued += 1
            started = time.perf_counter()
            await store(f"room{number % ROOMS}", f"message {issued}")
            latencies.append(time.perf_counter() - started)

    loop_cpu, process_cpu, wall = time.thread_time(), time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(in_flight)))
    loop_cpu, process_cpu = time.thread_time() - loop_cpu, time.process_time() - process_cpu
    wall = time.perf_counter() - wall
    latencies.sort()
    return {
        "stores_per_s": round(total / wall),
        "loop_cpu_us_per_store": round(loop_cpu / total * 1e6, 2),
        "process_cpu_us_per_store": round(process_cpu / total * 1e6, 2),
        "latency_ms_p50": round(statistics.median(latencies) * 1000, 2),
        "latency_ms_p99": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
    }


async def run_threads(url: str, total: int, in_flight: int) -> dict[str, Any]:
    backend = create_backend(BackendOptions(url, retain_per_room=0))
    await backend.start()
    try:

        def store_soon(room: str, text: str) -> asyncio.Future[StoreResult]:
            return backend.store_soon(NewMessage(room, "ann", text, None, utc_timestamp()))

        return await drive(store_soon, total, in_flight)
    finally:
        await backend.close()


class AsyncpgStore(MessageWriter):
    """asyncpg sends parameters typed, and takes an untyped one in ``CASE id WHEN $1 THEN $2`` for text;
    psycopg2 (rooms' driver) writes them into the statement. The same UPDATE, with the casts."""

    count_case = "WHEN {p}::bigint THEN {p}::bigint"
    last_active_case = "WHEN {p}::bigint THEN {p}::text"


async def run_pwasyncio(database: peewee.Database, kind: str, total: int, in_flight: int) -> dict[str, Any]:
    schema = build_schema(database)
    store = (AsyncpgStore if kind == "postgresql" else MessageWriter)(
        RoomsDatabase(database, schema, kind), retain_per_room=0
    )
    await database.run(prepare_schema, database, schema)
    queued: list[tuple[NewMessage, asyncio.Future[StoreResult]]] = []
    writer: asyncio.Task[None] | None = None

    async def write_queued() -> None:
        nonlocal writer
        while queued:
            batch = queued[:]
            queued.clear()
            try:
                results = await database.run(store.write_batch, [request for request, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                future.set_result(result)
        writer = None

    def store_soon(room: str, text: str) -> asyncio.Future[StoreResult]:
        nonlocal writer
        future = asyncio.get_running_loop().create_future()
        queued.append((NewMessage(room, "ann", text, None, utc_timestamp()), future))
        if writer is None:
            writer = asyncio.create_task(write_queued())
        return future

    try:
        return await drive(store_soon, total, in_flight)
    finally:
        await database.close_pool()  # an open pool keeps the process from exiting


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--stores", type=int, default=30_000)
    parser.add_argument("--in-flight", type=int, default=500)
    args = parser.parse_args()
    from playhouse.pwasyncio import AsyncPostgresqlDatabase, AsyncSqliteDatabase

    results = {}
    with tempfile.TemporaryDirectory(prefix="rooms-sql-routes-") as tmp:
        for route in ("threads", "pwasyncio", "threads", "pwasyncio"):  # interleaved, two rounds
            if args.database == "sqlite":
                path = Path(tmp) / f"{route}-{len(results)}.db"
                if route == "threads":
                    measured = await run_threads(f"sqlite:///{path}", args.stores, args.in_flight)
                else:
                    database = AsyncSqliteDatabase(
                        str(path), pragmas={"journal_mode": "wal", "synchronous": "FULL", "foreign_keys": 1}
                    )
                    measured = await run_pwasyncio(database, "sqlite", args.stores, args.in_flight)
            else:
                fresh_sql_database("postgresql")()
                if route == "threads":
                    measured = await run_threads(POSTGRESQL_URL, args.stores, args.in_flight)
                else:
                    database = AsyncPostgresqlDatabase(BENCH_DATABASE, user="postgres", host="127.0.0.1", port=5432)
                    measured = await run_pwasyncio(database, "postgresql", args.stores, args.in_flight)
            results[f"{route} round {len(results) // 2 + 1}"] = measured
            print(route, json.dumps(measured), flush=True)


if __name__ == "__main__":
    asyncio.run(main())

"""The SQL backend's worker threads, and how a query runs on one.

Each thread queries on a connection of its own (peewee keeps one per thread). A query that fails drops its
thread's connection and raises ``BackendUnavailable``; the next query connects again, so the backend mends
itself once the database is back. What a thread finds is handed to the event loop, for the Future that
waits for it there.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import peewee

from backends.errors import BackendUnavailable
from backends.sql.database import RoomsDatabase
from backends.sql.refusals import first_line
from backends.sql.settling import settle, settle_exception

T = TypeVar("T")
STOP = object()  # what ends a thread's queue of jobs

Job = Callable[[], None]


class Workers:
    """The threads of one backend, the jobs they serve, and the way back to the loop."""

    def __init__(self, database: RoomsDatabase, kind: str) -> None:
        self._database = database
        self._kind = kind
        self.loop: asyncio.AbstractEventLoop | None = None  # once started
        self._threads: list[threading.Thread] = []

    def spawn(self, name: str, target: Callable[..., None], *args: object) -> None:
        # Daemon threads: a backend that was never closed cannot keep the process alive.
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    async def join(self) -> None:
        threads, self._threads = self._threads, []
        for thread in threads:
            await asyncio.to_thread(thread.join)

    def serve(self, jobs: queue.SimpleQueue[Job | object]) -> None:
        """A thread's life: run the jobs queued for it until ``STOP``."""
        try:
            while callable(job := jobs.get()):
                job()
        finally:
            self._database.drop_connection()

    async def run_on(
        self, jobs: queue.SimpleQueue[Job | object], operation: str, query: Callable[[], T], idempotent: bool
    ) -> T:
        """Run ``query`` on the thread that serves ``jobs``, and wait for what it gives."""
        if self.loop is None:
            raise BackendUnavailable(f"the {self._kind} backend is not running")
        future: asyncio.Future[T] = self.loop.create_future()

        def job() -> None:
            try:
                result = self.guarded(operation, query, idempotent)
            except BaseException as exc:
                self.call_on_loop(settle_exception, future, exc)
            else:
                self.call_on_loop(settle, future, result)

        jobs.put(job)
        return await future

    def call_on_loop(self, callback: Callable[..., None], *args: Any) -> None:
        assert self.loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting any more
            self.loop.call_soon_threadsafe(callback, *args)

    def guarded(self, operation: str, query: Callable[[], T], idempotent: bool = False) -> T:
        reused_connection = not self._database.db.is_closed()
        try:
            return query()
        except (peewee.PeeweeException, OSError) as exc:
            # The connection may be dead (server restarted, link cut): drop it, the next query reconnects.
            self._database.drop_connection()
            if idempotent and reused_connection and not isinstance(exc, peewee.IntegrityError):
                # It may have died while idle; a read can simply be asked again on a new one.
                return self.guarded(operation, query)
            raise BackendUnavailable(f"{self._kind} {operation} failed: {first_line(exc)}") from exc

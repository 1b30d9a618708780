"""What the SQL backend's worker threads hand back to the event loop: a result or an error for a Future
the loop is waiting on, settled only if nobody gave up on it meanwhile."""

from __future__ import annotations

import asyncio
from typing import Any


def settle(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)


def settle_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)

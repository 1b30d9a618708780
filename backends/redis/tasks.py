"""Ending the Redis backend's background tasks."""

from __future__ import annotations

import asyncio


async def cancel_and_wait(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait for it to end. A cancellation that meets a redis-py read timeout expiring
    at the same moment can be turned into a ``TimeoutError`` (which the loops survive), so cancel
    again until the task is really done."""
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=0.1)

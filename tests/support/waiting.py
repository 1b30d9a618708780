"""Waiting for what other tasks or processes bring about: one bounded poll for every test."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

Condition = Callable[[], Any | Awaitable[Any]]


async def eventually(
    condition: Condition,
    timeout: float = 10,
    interval: float = 0.02,
    message: str | Callable[[], object] | None = None,
) -> Any:
    """Poll ``condition`` (a plain callable, or one returning an awaitable) until it gives a true value, and
    return that value. The timeout is a bound, not a measurement. When it passes, AssertionError says what
    was not reached: ``message`` (a callable is asked then, to describe the state that stood instead) or
    else the condition's source, with the condition's last value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() >= deadline:
            what = message() if callable(message) else message or _source(condition)
            raise AssertionError(f"not reached within {timeout}s: {what} (last value: {value!r})")
        await asyncio.sleep(interval)


def _source(condition: Condition) -> str:
    try:
        return inspect.getsource(condition).strip()
    except (OSError, TypeError):
        return repr(condition)

"""The log records an application in the test's process writes, as its loggers hand them to a handler."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

WAIT_SECONDS = 5.0
POLL_SECONDS = 0.01


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    async def first(self, matches: Callable[[logging.LogRecord], bool]) -> logging.LogRecord:
        """The first record that ``matches``, once it is written (a line is written after its event)."""
        deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
        while True:
            found = [record for record in self.records if matches(record)]
            if found:
                return found[0]
            assert asyncio.get_running_loop().time() < deadline, [r.getMessage() for r in self.records]
            await asyncio.sleep(POLL_SECONDS)


@contextmanager
def records_of(*names: str) -> Iterator[Records]:
    """Every record of the loggers ``names`` at INFO and above, while the block runs."""
    handler = Records()
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)

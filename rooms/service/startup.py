"""Reaching the backend at start, and the one line (and exit status) when it cannot be reached."""

from __future__ import annotations

import asyncio
import logging
import sys
import time

from backends import create_backend
from backends.base import Backend
from backends.errors import BackendConfigError, BackendRefused, BackendUnavailable
from rooms.config.masking import mask_url
from rooms.config.model import Config

log = logging.getLogger("rooms")

EXIT_BACKEND_UNREACHABLE = 1
EXIT_CONFIG_ERROR = 2
RETRY_PAUSE_SECONDS = 0.5


async def start_backend(config: Config) -> Backend:
    """Keep trying an unreachable backend for ``backend.connect_timeout`` seconds, then give up; one that
    refuses (``BackendRefused``) is not tried again."""
    deadline = time.monotonic() + config.backend.connect_timeout
    while True:
        backend = create_backend(config.backend_options())
        try:
            await backend.start()
            return backend
        except BackendRefused:
            await backend.close()
            raise
        except BackendUnavailable as exc:
            await backend.close()
            if time.monotonic() >= deadline:
                raise
            # Debug only: the contract is one line on stderr when the server gives up.
            log.debug("backend not reachable yet (%s); retrying", exc)
            await asyncio.sleep(RETRY_PAUSE_SECONDS)


def report_backend_failure(config: Config, error: BackendRefused | BackendUnavailable | BackendConfigError) -> int:
    """Say on stderr, in one line, why the backend cannot be used; the exit status: 2 for what no restart
    mends (a refusal, a bad option), 1 for a backend that may yet come (a service manager restarts)."""
    url = mask_url(config.backend.url)
    if isinstance(error, BackendRefused):
        print(f"rooms: backend {url} refused: {error}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    if isinstance(error, BackendUnavailable):
        timeout = config.backend.connect_timeout
        print(f"rooms: backend unreachable after {timeout:g}s: {url}: {error}", file=sys.stderr)
        return EXIT_BACKEND_UNREACHABLE
    print(f"rooms: config error: {error}", file=sys.stderr)
    return EXIT_CONFIG_ERROR

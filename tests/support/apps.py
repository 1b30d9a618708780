"""The application as a test makes it: a config without a file, and the shutdown ``server.py`` does."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from backends.base import Backend
from rooms.config.loading import load_config
from rooms.config.model import Config
from rooms.room.hub import RoomHub
from rooms.web.app import RoomsApplication


def app_config(**sections: dict[str, Any]) -> Config:
    """A config for tests: defaults plus the given sections' keys (no config file is read)."""
    overrides = {f"{section}.{key}": value for section, keys in sections.items() for key, value in keys.items()}
    return load_config(os.devnull, environ={}, overrides=overrides)


def backend_settings(config: Config) -> dict[str, Any]:
    """What a test's backend takes from the test's config, as ``server.py`` would build it."""
    options = config.backend_options()
    return {"retain_per_room": options.retain_per_room, "quota": options.quota}


async def shut_down(application: RoomsApplication, backend: Backend) -> None:
    """What ``server.py`` does on SIGTERM, for an app a test made: nothing of it outlives the test."""
    await stop_hub(application.hub)
    await backend.close()
    await asyncio.sleep(0)  # the last leaves' unsubscribes start (and find the backend closed), not left unrun


async def stop_hub(hub: RoomHub) -> None:
    """The room layer's part of the shutdown, for a test that closes its backend itself: no presence tick
    or timer of the hub is left to run, or to be collected half-run, in a later test."""
    hub.close_all()
    await hub.wait_idle()
    await hub.wait_closed()

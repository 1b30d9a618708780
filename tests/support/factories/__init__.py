"""Backend factories for the shared contract suite.

Each module in this package exposes ``FACTORIES``: a dict of name -> :class:`BackendFactory`. The
contract suite runs every test against every factory found here, so a new backend adds one module and
never copies a test.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from typing import Any, Protocol

import pytest

from backends.base import Backend


class BackendFactory(Protocol):
    async def create(self, **options: Any) -> Backend:
        """A started backend with fresh, empty storage of its own."""

    async def dispose(self) -> None:
        """Remove whatever ``create`` made (files, tables, keys); called after its backends are closed."""


def all_factories() -> dict[str, type]:
    found: dict[str, type] = {}
    for module_info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        found.update(getattr(module, "FACTORIES", {}))
    return found


def service_unreachable(what: str, reason: str) -> None:
    """A service the tests need is down: fail under CI (it must be there), skip with the reason elsewhere."""
    message = f"{what} is not reachable ({reason})"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must have it running", pytrace=False)
    pytest.skip(f"{message}; start it to run these tests")

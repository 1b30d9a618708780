"""The browser tier's fixtures: Chromium, ``server.py`` on memory:// (a module may bring its own ``server``), a
fresh browser context per visitor and a room of the test's own. Module-scoped ones start again for each module."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, sync_playwright

from tests.support.browser import CHROMIUM_FLAGS, WAIT_MS, RoomsServer, chromium_executable
from tests.support.processes import free_port


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium_executable()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def server() -> Iterator[RoomsServer]:
    running = RoomsServer(free_port())
    running.start()
    yield running
    running.stop()


@pytest.fixture
def new_context(browser: Browser) -> Iterator[Callable[[], BrowserContext]]:
    """Each context is a separate visitor: its own localStorage, like another browser."""
    contexts: list[BrowserContext] = []

    def make() -> BrowserContext:
        context = browser.new_context(viewport={"width": 900, "height": 700})
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def room() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"

"""The images under test, built once a run from this checkout and named for the run (tests/support/docker.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.docker import RUN_NAME, build_image, ensure_base_image, remove_images, require_docker
from tests.support.processes import ROOT


@pytest.fixture(scope="session")
def base_image() -> str:
    """Docker answers, and ``debian:bookworm-slim`` is there (made from Debian's archive if it was not)."""
    require_docker()
    ensure_base_image()
    return "debian:bookworm-slim"


@pytest.fixture(scope="session")
def rooms_image(base_image: str) -> Iterator[str]:
    """The repository's Dockerfile, built."""
    tag = f"{RUN_NAME}-rooms"
    build_image(tag, ROOT)
    yield tag
    remove_images(tag)


@pytest.fixture(scope="session")
def redis_image(base_image: str) -> Iterator[str]:
    """packaging/redis/Dockerfile, built: the Redis of compose.yaml's ``redis`` profile."""
    tag = f"{RUN_NAME}-redis"
    build_image(tag, os.path.join(ROOT, "packaging", "redis"))
    yield tag
    remove_images(tag)

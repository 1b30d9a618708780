"""How pytest-xdist shares the suite out among its workers (``--dist loadfile``, pyproject.toml's addopts): a
test file at a time, so that a module's fixtures are made once and its tests run in their order, with the
image tier's files on one worker, and the slowest files first, so that no long one starts last and runs
alone at the end."""

from __future__ import annotations

import pytest
from xdist.scheduler import LoadFileScheduling

# The image tier, one file after another on one worker: test_image.py and test_compose.py share the session's
# build of the rooms image, and the tier's builds (docker build, PyInstaller, the walk-through's apt-get and
# make pyz) run outside the workers, so that three at once would take both cores from every other worker.
TOGETHER = {
    f"tests/image/{name}.py": "the image tier"
    for name in ("test_compose", "test_image", "test_operating_guide_walkthrough", "test_binary", "test_hadolint")
}
# The files that take longest, the longest first, as measured on two cores with three workers (seconds of
# their tests' setup, call and teardown); every other file follows in the order of collection.
SLOWEST_FIRST = (
    "tests/image/test_compose.py",  # the image tier: 275 in all, building the rooms image
    "tests/image/test_image.py",
    "tests/image/test_operating_guide_walkthrough.py",  # 90
    "tests/image/test_binary.py",  # 75
    "tests/image/test_hadolint.py",
    "tests/browser/test_browser.py",  # 72
    "tests/browser/test_room_changes.py",  # 53
    "tests/process/test_bench_smoke.py",  # 52
    "tests/browser/test_moderation_page.py",  # 45
    "tests/browser/test_room_page_presence.py",  # 43
    "tests/browser/test_moderation_sign_in.py",  # 42
    "tests/backends/test_redis_cluster.py",  # 38
    "tests/browser/test_room_log.py",  # 37
    "tests/process/test_server_process.py",  # 34
    "tests/backends/test_redis_sentinel.py",  # 33
    "tests/contract/test_backend_stateful.py",  # 29
    "tests/process/test_cli.py",  # 28
    "tests/contract/test_messages.py",  # 27
    "tests/contract/test_search.py",  # 23
    "tests/process/test_pyz.py",  # 20
    "tests/app/test_replay_buffer.py",  # 19
)


def slowest_first(items: list[pytest.Item]) -> None:
    """Reorders ``items`` in place: the files of ``SLOWEST_FIRST`` first, in its order, then the rest as
    they were (every worker collects the same order, which xdist checks)."""
    rank = {path: place for place, path in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


class FileScheduling(LoadFileScheduling):
    """``loadfile``, with the files of ``TOGETHER`` one unit of work each, handed out in the order collected."""

    def __init__(self, config: pytest.Config, log: object = None) -> None:
        super().__init__(config, log)  # type: ignore[arg-type]
        # xdist would hand out the files with most tests first; their number says little of their time here.
        config.option.loadscopereorder = False

    def _split_scope(self, nodeid: str) -> str:
        path = nodeid.split("::", 1)[0]
        return TOGETHER.get(path, path)

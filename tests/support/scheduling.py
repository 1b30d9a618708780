"""How pytest-xdist shares the suite out among its workers (``--dist loadfile``, pyproject.toml's addopts): a
test file at a time, so that a module's fixtures are made once and its tests run in their order; the image
tier's files on one worker, first; the browser tier's last; and within each, the slowest files first, so that
no long one starts last and runs alone at the end."""

from __future__ import annotations

import pytest
from xdist.scheduler import LoadFileScheduling

# The image tier, one file after another on one worker: test_image.py and test_compose.py share the session's
# build of the rooms image, and the tier's builds (docker build, PyInstaller, the walk-through's apt-get and
# make pyz) run outside the workers, so that several at once would take both cores from every other worker.
TOGETHER = {
    f"tests/image/{name}.py": "the image tier"
    for name in ("test_compose", "test_image", "test_operating_guide_walkthrough", "test_binary", "test_hadolint")
}
# Seconds of each file's tests (setup, call and teardown), as measured on two cores with three workers.
FIRST = (
    "tests/image/test_compose.py",  # the image tier: 240 in all, building the rooms image
    "tests/image/test_image.py",
    "tests/image/test_binary.py",  # 90
    "tests/image/test_operating_guide_walkthrough.py",  # 60-90
    "tests/image/test_hadolint.py",
    "tests/process/test_bench_smoke.py",  # 67
    "tests/backends/test_redis_cluster.py",  # 45
    "tests/process/test_server_process.py",  # 41
    "tests/backends/test_redis_sentinel.py",  # 34
    "tests/process/test_cli.py",  # 20
    "tests/contract/test_backend_stateful.py",  # 20
    "tests/backends/test_server_refusals.py",  # 18
    "tests/app/test_replay_buffer.py",  # 17
    "tests/backends/test_redis_processes.py",  # 16
    "tests/process/test_pyz.py",  # 16
)
# The browser tier starts once every other file has: a page's WebSocket starved of CPU by the image tier's
# builds did not open within the tests' 15 s. Its slowest files first.
BROWSER_TIER = "tests/browser/"
BROWSER_FIRST = (
    "tests/browser/test_browser.py",  # 76
    "tests/browser/test_room_page_presence.py",  # 46
    "tests/browser/test_moderation_page.py",  # 34
    "tests/browser/test_room_changes.py",  # 30
    "tests/browser/test_moderation_sign_in.py",  # 26
    "tests/browser/test_room_log.py",  # 19
    "tests/browser/test_room_page_reading.py",  # 16
)


def run_order(items: list[pytest.Item]) -> None:
    """Reorders ``items`` in place: the files of ``FIRST`` in its order, then every other file but the
    browser tier's as collected, then the browser tier's, those of ``BROWSER_FIRST`` first (every worker
    collects the same order, which xdist checks)."""

    def place(item: pytest.Item) -> tuple[int, int]:
        path = item.nodeid.split("::", 1)[0]
        if path in FIRST:
            return 0, FIRST.index(path)
        if path.startswith(BROWSER_TIER):
            return 2, BROWSER_FIRST.index(path) if path in BROWSER_FIRST else len(BROWSER_FIRST)
        return 1, 0

    items.sort(key=place)


class FileScheduling(LoadFileScheduling):
    """``loadfile``, with the files of ``TOGETHER`` one unit of work, handed out in the order collected."""

    def __init__(self, config: pytest.Config, log: object = None) -> None:
        super().__init__(config, log)  # type: ignore[arg-type]
        # xdist would hand out the files with most tests first; their number says little of their time here.
        config.option.loadscopereorder = False

    def _split_scope(self, nodeid: str) -> str:
        path = nodeid.split("::", 1)[0]
        return TOGETHER.get(path, path)

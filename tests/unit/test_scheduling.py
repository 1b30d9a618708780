"""The files tests/support/scheduling.py names for xdist's workers are files of the suite: a file renamed or
removed would otherwise drop out of its order, or its group, without a word."""

from __future__ import annotations

from pathlib import Path

from tests.support.processes import ROOT
from tests.support.scheduling import BROWSER_FIRST, BROWSER_TIER, FIRST, TOGETHER


def test_every_file_named_to_run_first_last_or_together_is_a_test_file_of_the_suite() -> None:
    named = [*FIRST, *BROWSER_FIRST, *TOGETHER]
    assert len(set(FIRST)) == len(FIRST) and len(set(BROWSER_FIRST)) == len(BROWSER_FIRST)
    assert [path for path in named if not (Path(ROOT) / path).is_file()] == []
    assert all(path.startswith("tests/") and Path(path).name.startswith("test_") for path in named)
    assert all(path.startswith(BROWSER_TIER) for path in BROWSER_FIRST)
    assert not any(path.startswith(BROWSER_TIER) for path in FIRST)

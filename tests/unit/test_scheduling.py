"""The files tests/support/scheduling.py names for xdist's workers are files of the suite: a file renamed or
removed would otherwise drop out of its order, or its group, without a word."""

from __future__ import annotations

from pathlib import Path

from tests.support.processes import ROOT
from tests.support.scheduling import SLOWEST_FIRST, TOGETHER


def test_every_file_named_to_run_first_or_together_is_a_test_file_of_the_suite() -> None:
    named = [*SLOWEST_FIRST, *TOGETHER]
    assert len(set(SLOWEST_FIRST)) == len(SLOWEST_FIRST)
    assert [path for path in named if not (Path(ROOT) / path).is_file()] == []
    assert all(path.startswith("tests/") and Path(path).name.startswith("test_") for path in named)

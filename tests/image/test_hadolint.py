"""Every Dockerfile of the repository passes hadolint (pinned in requirements-dev.txt) without a finding; a rule
is ignored only by a comment in the Dockerfile that says why."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import ROOT

SKIPPED_FOLDERS = {".git", ".venv", "node_modules", "build", "dist"}


def hadolint() -> str:
    beside_python = Path(sys.executable).parent / "hadolint"
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    if found is None:
        reason = "hadolint is not installed (pip install -r requirements-dev.txt)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must have it", pytrace=False)
        pytest.skip(reason)
    return found


def dockerfiles() -> list[str]:
    found = []
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [name for name in subfolders if name not in SKIPPED_FOLDERS]
        found += [os.path.relpath(os.path.join(folder, name), ROOT) for name in files if name == "Dockerfile"]
    return sorted(found)


@pytest.mark.parametrize("dockerfile", dockerfiles())
def test_hadolint_finds_nothing(dockerfile):
    linted = subprocess.run(
        [hadolint(), "--no-color", "--failure-threshold", "style", dockerfile],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (linted.returncode, linted.stdout + linted.stderr) == (0, "")

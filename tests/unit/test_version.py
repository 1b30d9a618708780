"""Which rooms this is: the installed package's version, else the git revision of the checkout it runs from."""

from __future__ import annotations

import shutil
import subprocess
from importlib import metadata
from pathlib import Path

from rooms.service.version import rooms_version

ROOT = Path(__file__).resolve().parents[2]


def test_the_version_is_the_installed_packages_else_the_checkouts_revision():
    try:
        expected = metadata.version("rooms")
    except metadata.PackageNotFoundError:
        git = shutil.which("git")
        assert git is not None and (ROOT / ".git").exists(), "tests run from a git checkout"
        expected = subprocess.run(
            [git, "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()
    assert rooms_version() == expected and expected

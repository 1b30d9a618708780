"""The layers' dependencies run one way (server.py -> rooms/ -> backends/): the room layer, and who a
request is and where it may go, import nothing of Tornado or of the web layer; the backends import
neither Tornado nor rooms. Each is imported whole in a fresh interpreter, which then lists what it loaded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIST_LOADED = "import importlib, sys\nfor name in sys.argv[1:]: importlib.import_module(name)\nprint(*sys.modules)"


def modules_of(package: str) -> list[str]:
    """Every module of ``package`` (its subpackages' too), by the files it holds."""
    names = []
    for path in sorted((ROOT / package.replace(".", "/")).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def loaded_by(modules: list[str]) -> set[str]:
    """The modules a fresh interpreter holds once it has imported ``modules``."""
    listing = subprocess.run(
        [sys.executable, "-c", LIST_LOADED, *modules], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert listing.returncode == 0, listing.stderr
    return set(listing.stdout.split())


def top_packages(loaded: set[str], *packages: str) -> set[str]:
    """The modules of ``loaded`` inside any of ``packages``."""
    return {name for name in loaded if any(name == p or name.startswith(f"{p}.") for p in packages)}


@pytest.mark.parametrize("package", ["rooms.room", "rooms.access"])
def test_layer_imports_no_tornado(package: str) -> None:
    assert top_packages(loaded_by(modules_of(package)), "tornado", "rooms.web") == set()


def test_backends_import_neither_tornado_nor_rooms() -> None:
    assert top_packages(loaded_by(modules_of("backends")), "tornado", "rooms") == set()

"""Which rooms this is: the installed package's version, else the revision of the checkout it runs from."""

from __future__ import annotations

import functools
import os
import subprocess
from importlib import metadata

PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKOUT = os.path.dirname(PACKAGE_ROOT)
UNKNOWN = "unknown"


@functools.cache
def rooms_version() -> str:
    """The git revision of the checkout it runs from (``git describe --always --dirty``), else the installed
    package's version (pip install, the one-file app, the binary), else "unknown". A checkout comes first: a
    build run in it (``pip install .``) leaves package metadata beside the code that names no revision."""
    return _checkout_revision() or _installed_version() or UNKNOWN


def _installed_version() -> str | None:
    try:
        distribution = metadata.distribution("rooms")
    except metadata.PackageNotFoundError:
        return None
    # Only if that is the code running: a checkout may run beside an older rooms installed in the same venv.
    installed = os.path.realpath(str(distribution.locate_file("rooms")))
    return distribution.version if installed == os.path.realpath(PACKAGE_ROOT) else None


def _checkout_revision() -> str | None:
    if not os.path.exists(os.path.join(CHECKOUT, ".git")):
        return None
    try:
        described = subprocess.run(
            ["git", "-C", CHECKOUT, "describe", "--always", "--dirty", "--tags"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    revision = described.stdout.strip()
    return revision if described.returncode == 0 and revision else None

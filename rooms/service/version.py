"""Which rooms this is: the installed package's version, else the revision of the checkout it runs from."""

from __future__ import annotations

import functools
import os
import subprocess
from importlib import metadata

CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UNKNOWN = "unknown"
GIT_TIMEOUT_SECONDS = 5


@functools.cache
def rooms_version() -> str:
    """``pip install .`` records the version; a checkout has its git revision; else ``unknown``."""
    try:
        return metadata.version("rooms")
    except metadata.PackageNotFoundError:
        return _checkout_revision() or UNKNOWN


def _checkout_revision() -> str | None:
    # Only the checkout's own repository: git would otherwise find any repository above the folder.
    if not os.path.exists(os.path.join(CHECKOUT, ".git")):
        return None
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=CHECKOUT,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None  # no git on the host
    revision = done.stdout.strip()
    return revision if done.returncode == 0 and revision else None

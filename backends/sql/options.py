"""The SQL backend's own options, read in one place: the kind of database ``backend.url`` names, and the
``backend`` keys only SQL reads, which the config passes on in ``BackendOptions.settings``:

* ``sqlite_synchronous`` (default ``full``): SQLite's ``PRAGMA synchronous``. ``full`` syncs the WAL at
  every commit, so an acknowledged message survives a power loss; ``normal`` survives a crash of rooms
  only. Checked whichever database the URL names, as a mistake in the config is one either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from backends.base import AddressQuota, BackendOptions
from backends.errors import BackendConfigError

# URL scheme -> the kind /healthz reports (and the scheme playhouse.db_url knows it by).
KINDS = {"sqlite": "sqlite", "postgresql": "postgresql", "postgres": "postgresql", "mysql": "mysql", "mariadb": "mysql"}
SYNCHRONOUS_LEVELS = ("full", "normal")


@dataclass(frozen=True, slots=True)
class SQLOptions:
    url: str
    kind: str  # sqlite, postgresql or mysql
    synchronous: str  # one of SYNCHRONOUS_LEVELS; only SQLite uses it
    retain_per_room: int
    quota: AddressQuota | None
    audit_keep: int


def read_options(options: BackendOptions) -> SQLOptions:
    """The SQL backend's options; ``BackendConfigError`` naming the key of a bad one."""
    synchronous = options.settings.get("sqlite_synchronous", "full")
    if not isinstance(synchronous, str) or synchronous.lower() not in SYNCHRONOUS_LEVELS:
        levels = ", ".join(SYNCHRONOUS_LEVELS)
        raise BackendConfigError(f"backend.sqlite_synchronous: {synchronous!r} is not one of {levels}")
    return SQLOptions(
        options.url,
        kind_of(options.url),
        synchronous.lower(),
        options.retain_per_room,
        options.quota,
        options.audit_keep,
    )


def kind_of(url: str) -> str:
    return KINDS[urlsplit(url).scheme.lower()]

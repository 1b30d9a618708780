"""The SQL backend's own options, read in one place."""

from __future__ import annotations

from urllib.parse import urlsplit

# URL scheme -> the kind /healthz reports (and the scheme playhouse.db_url knows it by).
KINDS = {"sqlite": "sqlite", "postgresql": "postgresql", "postgres": "postgresql", "mysql": "mysql", "mariadb": "mysql"}


def kind_of(url: str) -> str:
    return KINDS[urlsplit(url).scheme.lower()]

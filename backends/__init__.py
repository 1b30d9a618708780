"""Choose a backend by the scheme of ``backend.url``; import its driver only when chosen."""

from __future__ import annotations

import importlib
from typing import Any
from urllib.parse import urlsplit

from backends.base import Backend
from rooms.errors import ConfigError

# scheme -> (module, class). Aliases name the same store.
SCHEMES: dict[str, tuple[str, str]] = {
    "memory": ("backends.memory", "MemoryBackend"),
    "sqlite": ("backends.sql", "SQLBackend"),
    "postgresql": ("backends.sql", "SQLBackend"),
    "postgres": ("backends.sql", "SQLBackend"),
    "mysql": ("backends.sql", "SQLBackend"),
    "mariadb": ("backends.sql", "SQLBackend"),
    "redis": ("backends.redis_streams", "RedisBackend"),
    "rediss": ("backends.redis_streams", "RedisBackend"),
}


def url_scheme(url: str) -> str:
    """The scheme of a backend URL, or ``ConfigError`` naming ``backend.url`` if it is not one we know."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in SCHEMES:
        known = ", ".join(sorted(SCHEMES))
        raise ConfigError(f"backend.url: unknown scheme {scheme or url!r} (known: {known})")
    return scheme


def create_backend(url: str, **options: Any) -> Backend:
    """Build the backend for ``url``. ``options`` are the keys of the ``history`` and ``backend`` config
    every backend accepts (``retain_per_room``); a backend takes the URL only if it needs one."""
    module_name, class_name = SCHEMES[url_scheme(url)]
    backend_class = getattr(importlib.import_module(module_name), class_name)
    if module_name == "backends.memory":
        return backend_class(**options)  # type: ignore[no-any-return]
    return backend_class(url, **options)  # type: ignore[no-any-return]

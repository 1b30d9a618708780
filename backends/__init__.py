"""Choose a backend by the scheme of ``backend.url``; import its driver only when chosen."""

from __future__ import annotations

import importlib
from urllib.parse import urlsplit

from backends.base import Backend, BackendOptions
from backends.errors import BackendConfigError

# scheme -> (module, class). Aliases name the same store.
SCHEMES: dict[str, tuple[str, str]] = {
    "memory": ("backends.memory", "MemoryBackend"),
    "sqlite": ("backends.sql.backend", "SQLBackend"),
    "postgresql": ("backends.sql.backend", "SQLBackend"),
    "postgres": ("backends.sql.backend", "SQLBackend"),
    "mysql": ("backends.sql.backend", "SQLBackend"),
    "mariadb": ("backends.sql.backend", "SQLBackend"),
    "redis": ("backends.redis.backend", "RedisBackend"),
    "rediss": ("backends.redis.backend", "RedisBackend"),
    "redis+sentinel": ("backends.redis.backend", "RedisBackend"),
    "redis+cluster": ("backends.redis.backend", "RedisBackend"),
}


def url_scheme(url: str) -> str:
    """The scheme of a backend URL, or ``BackendConfigError`` naming ``backend.url`` if it is not one we know."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in SCHEMES:
        known = ", ".join(sorted(SCHEMES))
        raise BackendConfigError(f"backend.url: unknown scheme {scheme or url!r} (known: {known})")
    return scheme


def create_backend(options: BackendOptions) -> Backend:
    """Build the backend ``options.url`` names; it reads the rest of ``options`` itself."""
    return _backend_class(options.url).from_options(options)


def check_options(options: BackendOptions) -> None:
    """Check the scheme of ``options.url`` and what the backend it names reads of ``options``, building
    and connecting nothing; ``BackendConfigError`` naming the bad option."""
    _backend_class(options.url).check_options(options)


def _backend_class(url: str) -> type[Backend]:
    module_name, class_name = SCHEMES[url_scheme(url)]
    backend_class: type[Backend] = getattr(importlib.import_module(module_name), class_name)
    return backend_class

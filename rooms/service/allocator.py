"""``server.allocator``: where the server's memory comes from, settled before Tornado and rooms are imported.

Python keeps its small objects in 1 MiB arenas of its own and gives an arena back only once every object in it
is freed, so the few kilobytes a full room leaves behind keep tens of MiB after everyone left, more after each
crowd (docs/benchmarks.md). With Python's small-object allocator off (``PYTHONMALLOC=malloc``) and jemalloc
loaded before everything else (``LD_PRELOAD``), freed pages go back half a second after the crowd left, from a
thread of jemalloc's own. Both act only when set before Python starts: so the entry, before it imports anything
big, executes itself again once, as the same process (its pid, its descriptors, hence systemd's sockets and
notify socket, are kept), with that environment.

This module imports nothing of rooms' and only the standard library and PyYAML: it runs before the rest.
"""

from __future__ import annotations

import logging
import os
import sys
import sysconfig
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import yaml

from rooms.errors import ConfigError

AUTO = "auto"
JEMALLOC = "jemalloc"
PYTHON = "python"
CHOICES = (AUTO, JEMALLOC, PYTHON)
LIBRARY = "libjemalloc.so.2"
PACKAGE = "libjemalloc2"
INSTALL = f"apt-get install {PACKAGE}"
# Freed pages go back half a second after the free, from jemalloc's own thread, not at every free (the
# configuration the big room's rounds measured). An operator's own MALLOC_CONF is left as it is.
MALLOC_CONF = "background_thread:true,dirty_decay_ms:500,muzzy_decay_ms:0"
CONFIG_VARIABLE = "ROOMS_CONFIG"
DEFAULT_FILE = "config.yaml"

log = logging.getLogger("rooms")


def library_directories() -> list[str]:
    """Where the dynamic linker finds a Debian package's library, this machine's architecture first."""
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    directories = [f"/usr/lib/{multiarch}", f"/lib/{multiarch}"] if multiarch else []
    return [*directories, "/usr/lib64", "/usr/lib", "/usr/local/lib"]


def find_jemalloc(directories: Sequence[str] | None = None) -> str | None:
    """The path of ``libjemalloc.so.2``, or None where it is not installed."""
    for directory in library_directories() if directories is None else directories:
        path = os.path.join(directory, LIBRARY)
        if os.path.isfile(path):
            return path
    return None


def configured_choice(argv: Sequence[str], environ: Mapping[str, str]) -> str | None:
    """``server.allocator`` as the config file says (``--config``, else ``$ROOMS_CONFIG``, else ``config.yaml``
    here if there is one; no file: the default). None when the file cannot tell (unreadable, not YAML, a value
    that is no choice): the whole config, checked next, says what is wrong with it."""
    path = _config_path(argv, environ)
    if path is None:
        return AUTO
    try:
        with open(path, encoding="utf-8") as handle:
            raw: Any = yaml.safe_load(handle)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if raw is None:
        return AUTO
    server = raw.get("server") if isinstance(raw, dict) else None
    if not isinstance(raw, dict) or not isinstance(server or {}, dict):
        return None
    choice = (server or {}).get("allocator", AUTO)
    if not isinstance(choice, str) or choice.lower() not in CHOICES:
        return None
    return choice.lower()


def _config_path(argv: Sequence[str], environ: Mapping[str, str]) -> str | None:
    """The file ``--config`` names, as the command line's parser will read it (its last; ``--config=PATH``
    and the abbreviations argparse takes, ``--co`` on), else ``$ROOMS_CONFIG``, else ``config.yaml`` in the
    working directory if it exists."""
    path = None
    for index, argument in enumerate(argv):
        if argument == "--":
            break
        name, equals, value = argument.partition("=")
        if len(name) < len("--co") or not "--config".startswith(name):
            continue
        if equals:
            path = value
        elif index + 1 < len(argv):
            path = argv[index + 1]
    path = path or environ.get(CONFIG_VARIABLE)
    if path is None and os.path.exists(DEFAULT_FILE):
        return DEFAULT_FILE
    return path


def jemalloc_environment(environ: Mapping[str, str], library: str) -> dict[str, str]:
    """``environ`` with jemalloc loaded first and Python's small-object allocator off. Applied to its own
    result it changes nothing, which is what keeps the re-execution from ever repeating."""
    wanted = dict(environ)
    preloaded = wanted.get("LD_PRELOAD", "").replace(":", " ").split()
    if not any(os.path.basename(entry).startswith("libjemalloc") for entry in preloaded):
        wanted["LD_PRELOAD"] = " ".join([library, *preloaded])
    wanted["PYTHONMALLOC"] = "malloc"
    wanted.setdefault("MALLOC_CONF", MALLOC_CONF)
    return wanted


def cannot_switch() -> str | None:
    """Why this interpreter cannot take Python's allocator from the environment, or None when it can."""
    if getattr(sys, "frozen", False):
        return "the one-executable build's Python ignores PYTHONMALLOC"
    if sys.flags.ignore_environment:
        return "Python runs with -E or -I, which ignore PYTHONMALLOC"
    return None


def use_configured_allocator(
    argv: Sequence[str],
    environ: Mapping[str, str],
    find: Callable[[], str | None] = find_jemalloc,
    execute: Callable[[str, list[str], dict[str, str]], object] = os.execve,
) -> None:
    """Execute this process again on jemalloc when ``server.allocator`` (``auto`` or ``jemalloc``) wants it, it
    is installed, and the environment does not hold it yet; else return, and the process goes on as it is
    (the config check after says so when ``jemalloc`` is required and missing)."""
    if configured_choice(argv, environ) not in (AUTO, JEMALLOC) or cannot_switch() is not None:
        return
    library = find()
    if library is None:
        return
    wanted = jemalloc_environment(environ, library)
    if wanted == dict(environ):
        return  # executed with it already (or started so): never again
    sys.stdout.flush()
    sys.stderr.flush()
    execute(sys.executable, [sys.executable, *sys.orig_argv[1:]], wanted)


def check_choice(choice: str, find: Callable[[], str | None] = find_jemalloc) -> None:
    """``jemalloc`` required where it cannot run is a config error, as ``uvloop`` not installed is."""
    if choice != JEMALLOC:
        return
    # First what no install mends.
    reason = cannot_switch()
    if reason is not None:
        raise ConfigError(f"server.allocator: jemalloc cannot be used: {reason}")
    if find() is None:
        raise ConfigError(f"server.allocator: jemalloc is not installed ({LIBRARY}: {INSTALL})")


def jemalloc_mapped(maps_path: str = "/proc/self/maps") -> bool:
    """Whether jemalloc is loaded in this process, as the kernel's map of it says."""
    try:
        with open(maps_path, encoding="utf-8", errors="replace") as maps:
            return any("/libjemalloc" in line for line in maps)
    except OSError:
        return False


def describe(choice: str, mapped: bool, python_malloc: bool, installed: bool) -> str:
    """The start's line about the allocator in use."""
    if mapped and python_malloc:
        return "rooms allocates with jemalloc (loaded, Python's small-object allocator off)"
    if choice == PYTHON:
        return "rooms allocates with Python's own allocator (server.allocator: python)"
    reason = cannot_switch()
    if reason is None and not installed:
        return f"rooms allocates with Python's own allocator: {INSTALL} for jemalloc, which gives back a crowd's memory"
    return f"rooms allocates with Python's own allocator: {reason or 'jemalloc is installed but not loaded'}"


def log_allocator(choice: str, environ: Mapping[str, str] = os.environ) -> None:
    python_malloc = environ.get("PYTHONMALLOC") == "malloc" and cannot_switch() is None
    log.info("%s", describe(choice, jemalloc_mapped(), python_malloc, find_jemalloc() is not None))

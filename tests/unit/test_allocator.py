"""``server.allocator`` before the rest: the config file's choice read from the command line alone, the
environment that loads jemalloc, the one re-execution it takes and never a second, and ``jemalloc`` required
where it is missing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rooms.errors import ConfigError
from rooms.service import allocator
from rooms.service.allocator import (
    MALLOC_CONF,
    check_choice,
    configured_choice,
    jemalloc_environment,
    use_configured_allocator,
)

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"


def config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "rooms.yaml"
    path.write_text(text)
    return str(path)


def test_the_choice_comes_from_the_file_the_command_line_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    named = config(tmp_path, "server:\n  allocator: Python\n")
    assert configured_choice(["--config", named], {}) == "python"
    assert configured_choice([f"--config={named}", "serve"], {}) == "python"
    assert configured_choice(["--conf", named], {}) == "python"  # argparse takes an abbreviation
    assert configured_choice(["--check-config", "--config", named], {}) == "python"
    assert configured_choice(["serve"], {"ROOMS_CONFIG": named}) == "python"
    # No file anywhere: the default.
    assert configured_choice([], {}) == "auto"
    (tmp_path / "config.yaml").write_text("server:\n  allocator: jemalloc\n")
    assert configured_choice([], {}) == "jemalloc"


@pytest.mark.parametrize(
    "text", ["server:\n  allocator: tcmalloc\n", "server: [1]\n", "server:\n  allocator: [\n", "- a list\n"]
)
def test_a_file_that_cannot_tell_leaves_it_to_the_config_check(tmp_path, text):
    assert configured_choice(["--config", config(tmp_path, text)], {}) is None
    assert configured_choice(["--config", str(tmp_path / "missing.yaml")], {}) is None


def test_the_environment_loads_jemalloc_first_and_keeps_the_operator_s_own():
    environ = {"LD_PRELOAD": "/opt/libtrace.so", "MALLOC_CONF": "narenas:2", "PATH": "/usr/bin"}
    wanted = jemalloc_environment(environ, LIBRARY)
    assert wanted == {
        "LD_PRELOAD": f"{LIBRARY} /opt/libtrace.so",
        "MALLOC_CONF": "narenas:2",
        "PYTHONMALLOC": "malloc",
        "PATH": "/usr/bin",
    }
    assert jemalloc_environment({}, LIBRARY)["MALLOC_CONF"] == MALLOC_CONF
    # A jemalloc the operator preloads already is not loaded twice.
    assert jemalloc_environment({"LD_PRELOAD": "/usr/local/lib/libjemalloc.so"}, LIBRARY)["LD_PRELOAD"] == (
        "/usr/local/lib/libjemalloc.so"
    )


def test_the_process_is_executed_again_once_and_never_twice(tmp_path):
    argv = ["--config", config(tmp_path, "")]
    executed: list[tuple[str, list[str], dict[str, str]]] = []

    def execute(path: str, arguments: list[str], environ: dict[str, str]) -> None:
        executed.append((path, arguments, environ))

    use_configured_allocator(argv, {"PATH": "/usr/bin"}, find=lambda: LIBRARY, execute=execute)
    [(path, arguments, environ)] = executed
    assert path == sys.executable and arguments == [sys.executable, *sys.orig_argv[1:]]
    assert environ["PYTHONMALLOC"] == "malloc" and environ["LD_PRELOAD"] == LIBRARY
    # The process executed with that environment does not execute itself again.
    use_configured_allocator(argv, environ, find=lambda: LIBRARY, execute=execute)
    assert len(executed) == 1


@pytest.mark.parametrize(
    ("text", "found"), [("server:\n  allocator: python\n", LIBRARY), ("", None), ("server:\n  allocator: 7\n", LIBRARY)]
)
def test_nothing_is_executed_for_python_without_the_library_or_with_a_bad_value(tmp_path, text, found):
    def execute(*_: object) -> None:
        raise AssertionError("executed")

    use_configured_allocator(["--config", config(tmp_path, text)], {}, find=lambda: found, execute=execute)


def test_jemalloc_required_and_missing_is_a_config_error_naming_the_package():
    with pytest.raises(
        ConfigError, match=r"server\.allocator: jemalloc is not installed .*apt-get install libjemalloc2"
    ):
        check_choice("jemalloc", find=lambda: None)
    check_choice("auto", find=lambda: None)
    check_choice("python", find=lambda: None)


def test_the_library_is_found_in_the_directories_searched(tmp_path):
    assert allocator.find_jemalloc([str(tmp_path)]) is None
    (tmp_path / "libjemalloc.so.2").write_bytes(b"")
    assert allocator.find_jemalloc(["/nonexistent", str(tmp_path)]) == str(tmp_path / "libjemalloc.so.2")


def test_server_py_imports_nothing_of_tornado_or_the_server_before_the_allocator_is_settled():
    listing = subprocess.run(
        [sys.executable, "-c", "import server, sys; print(*sys.modules)"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listing.returncode == 0, listing.stderr
    loaded = set(listing.stdout.split())
    assert not {name for name in loaded if name.split(".")[0] in ("tornado", "backends")}
    assert {name for name in loaded if name.startswith("rooms.")} <= {
        "rooms.errors",
        "rooms.service",
        "rooms.service.allocator",
    }

"""The operator guide's walk-through: its shell blocks read from docs/operating.md by text, and a fresh Debian 12
machine with systemd as its first process, in a container, to run them in (tests/image)."""

from __future__ import annotations

import re
import subprocess
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.docker import BUILD_SECONDS, docker, logs
from tests.support.processes import ROOT

GUIDE = "docs/operating.md"
NGINX_RECIPE = "docs/proxy/nginx-one-process.conf"
MACHINE_CONTEXT = Path(ROOT) / "tests" / "support" / "systemd-debian"
# Where the machine sees the repository that the guide's `git clone <this repository>` clones.
REPOSITORY_MOUNT = "/mnt/repo"
CHECKOUT = "/usr/local/src/rooms"
# The example name of the guide and the recipes: kept, since the test's client sends it as Host.
SITE = "chat.example.org"
BOOT_SECONDS = 60
STEP_SECONDS = 600

FENCED_SHELL = re.compile(r"^( *)```sh\n(.*?)^\1```$", re.MULTILINE | re.DOTALL)
APT_INSTALL = re.compile(r"apt-get install -y ((?:[a-z0-9][a-z0-9.+-]* ?)+)")
CERTBOT_LINE = re.compile(r"(?m)^certbot certonly .*$")


def committed(path: str) -> str:
    """A file of the repository as the commit checked out has it: what the machine's clone gets, so that the
    guide's commands and the files they use are always of one commit (commit a change to walk it)."""
    shown = subprocess.run(["git", "-C", ROOT, "show", f"HEAD:{path}"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, f"git show HEAD:{path}: {shown.stderr}"
    return shown.stdout


def section(heading: str) -> str:
    """The guide's section under ``## heading``, up to the next one of that level."""
    text = committed(GUIDE)
    found = re.search(rf"(?ms)^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text)
    assert found, f"docs/operating.md has no section {heading!r}"
    return found.group(1)


def shell_blocks(text: str) -> list[str]:
    """Each ```sh fence of ``text``, in order, unindented (a fence inside a list item is indented with it)."""
    return [textwrap.dedent(match.group(2)) for match in FENCED_SHELL.finditer(text)]


def install_blocks() -> list[str]:
    """The commands of "Install on Debian or Ubuntu", one block a step that has any, in the guide's order."""
    blocks = shell_blocks(section("Install on Debian or Ubuntu"))
    assert blocks, "the install section has no ```sh block"
    return blocks


def credentials_block() -> str:
    """The commands of "Secrets" that install the credentials drop-in."""
    found = [block for block in shell_blocks(section("Secrets")) if "credentials.conf" in block]
    assert len(found) == 1, f"expected one block installing the credentials drop-in, found {len(found)}"
    return found[0]


def apt_packages(blocks: list[str]) -> list[str]:
    """Every package that the blocks' `apt-get install -y` lines name."""
    return [name for block in blocks for match in APT_INSTALL.finditer(block) for name in match.group(1).split()]


def certificate_paths() -> tuple[str, str]:
    """The certificate and key that the nginx recipe names (certbot's paths for the site)."""
    recipe = committed(NGINX_RECIPE)
    certificate = re.search(r"(?m)^\s*ssl_certificate\s+(\S+);", recipe)
    key = re.search(r"(?m)^\s*ssl_certificate_key\s+(\S+);", recipe)
    assert certificate and key, "the nginx recipe names no certificate"
    return certificate.group(1), key.group(1)


def for_this_machine(block: str) -> str:
    """The block with the placeholders the guide marks filled in: the repository to clone, and, since no
    certificate authority can reach this machine, certbot's certificate made by openssl at the same paths."""
    block = block.replace("<this repository>", REPOSITORY_MOUNT)
    certificate, key = certificate_paths()
    self_signed = (
        f"mkdir -p {Path(certificate).parent} {Path(key).parent} && openssl req -x509 -newkey ec "
        f"-pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN={SITE} -addext subjectAltName=DNS:{SITE} "
        f"-keyout {key} -out {certificate}"
    )
    return CERTBOT_LINE.sub(lambda _: self_signed, block)


def repository_to_clone(destination: Path) -> Path:
    """A bare clone of this checkout whose HEAD is the checkout's commit: what `git clone` of the project gets."""
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    bare = destination / "rooms.git"
    for command in (
        ["git", "clone", "--quiet", "--bare", "--no-local", ROOT, str(bare)],
        ["git", "-C", str(bare), "branch", "--force", "walkthrough", commit.stdout.strip()],
        ["git", "-C", str(bare), "symbolic-ref", "HEAD", "refs/heads/walkthrough"],
    ):
        subprocess.run(command, capture_output=True, check=True, timeout=120)
    return bare


class Machine:
    """A booted container of the systemd image: commands as root, as an operator types them."""

    def __init__(self, name: str) -> None:
        self.name = name

    def sh(self, script: str, workdir: str = "/root", timeout: float = STEP_SECONDS) -> str:
        """``script`` in bash with -euxo pipefail; its standard output, or AssertionError with all it said."""
        done = docker(
            "exec", "--workdir", workdir, self.name, "bash", "-euxo", "pipefail", "-c", script,
            timeout=timeout, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            said = f"{done.stdout}\n{done.stderr}"
            journal = self.run("journalctl", "--lines", "20", "--no-pager", "--unit", "rooms").stdout
            heading = f"exit {done.returncode} of:\n{script}"
            raise AssertionError(f"{heading}\n--- it said\n{said}\n--- rooms' journal\n{journal}")
        return done.stdout

    def run(self, *command: str) -> subprocess.CompletedProcess[str]:
        return docker("exec", self.name, *command, check=False)

    def journal(self, unit: str) -> str:
        return self.run("journalctl", "--unit", unit, "--output", "cat", "--no-pager").stdout

    def wait_booted(self) -> str:
        """systemd's own verdict once it has started what it starts at boot: "running", or "degraded" when a
        unit failed; which, is in the answer (a container lacks some of a machine's devices)."""
        deadline = time.monotonic() + BOOT_SECONDS
        while time.monotonic() < deadline:
            # Before D-Bus is up, systemctl cannot ask yet: it says so and exits at once.
            state = self.run("systemctl", "is-system-running", "--wait").stdout.strip()
            if state in ("running", "degraded"):
                return state
            time.sleep(0.2)
        raise AssertionError(f"systemd did not finish booting within {BOOT_SECONDS}s:\n{logs(self.name)}")


def build_machine_image(tag: str, packages: list[str]) -> None:
    docker(
        "build", "--tag", tag, "--build-arg", f"PACKAGES={' '.join(packages)}", str(MACHINE_CONTEXT),
        timeout=BUILD_SECONDS,
    )  # fmt: skip


@contextmanager
def booted(name: str, image: str, repository: Path, https_port: int) -> Iterator[Machine]:
    """The image started with systemd as its first process, ``repository`` mounted where the guide's clone finds
    it and its port 443 on the host's loopback ``https_port``; removed afterwards. Not --privileged, which a
    daemon that lacks a capability itself cannot grant (runc refuses to start the container): every capability
    but CAP_SYS_RESOURCE, no seccomp or AppArmor profile of Docker's in the way of the units' own sandboxes, a
    /run of its own, and the host's cgroup tree to make its units' groups in (under the container's own group
    there), which is what systemd needs with cgroups v1 as with v2."""
    docker(
        "run", "--detach", "--name", name,
        "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
        "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
        "--cgroupns", "host", "--volume", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
        "--tmpfs", "/run", "--tmpfs", "/run/lock",
        "--volume", f"{repository}:{REPOSITORY_MOUNT}:ro",
        "--publish", f"127.0.0.1:{https_port}:443",
        image,
    )  # fmt: skip
    try:
        yield Machine(name)
    finally:
        docker("rm", "--force", "--volumes", name, check=False)

"""Where a rooms server spends its time under the fan-out load: py-spy samples, summed per function.

``python -m bench.profile [--scenario fanout] [--server rooms] [--duration 6]`` starts the server,
attaches ``py-spy record`` to it (sampling from outside, so the server runs unmodified), runs the
scenario's load, and prints the functions with the most samples, by their own time and including what
they call. ``--raw PATH`` keeps py-spy's folded stacks (flamegraph input).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench.run import loadgen_command
from bench.scenarios import SCENARIOS
from bench.servers import ROOT, SERVERS, stop

SHOWN = 20


def summarize(folded: Path) -> str:
    """Per function: the share of samples where it was running (self) and on the stack (total)."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        weight = int(count)
        samples += weight
        frames = stack.split(";")
        own[frames[-1]] += weight
        for frame in set(frames):
            total[frame] += weight
    lines = [f"{samples} samples", "", "self %  function (file:line)"]
    lines += [f"{100 * n / samples:5.1f}  {frame}" for frame, n in own.most_common(SHOWN)]
    lines += ["", "total %  function (file:line)"]
    lines += [f"{100 * n / samples:5.1f}  {frame}" for frame, n in total.most_common(SHOWN)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.profile", description=__doc__.splitlines()[0])
    rows = sorted({*SERVERS, *(row for s in SCENARIOS for row in s.variants)})
    parser.add_argument("--server", default="rooms", choices=rows, help="a server, or a scenario's variant row")
    parser.add_argument("--scenario", default="fanout", choices=[s.name for s in SCENARIOS])
    parser.add_argument("--duration", type=float, default=6)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--raw", type=Path, help="keep py-spy's folded stacks here")
    parser.add_argument(
        "--gil", action="store_true", help="sample only the thread holding the GIL (where threads contend for it)"
    )
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    with tempfile.TemporaryDirectory(prefix="rooms-profile-") as tmp:
        workdir = Path(tmp)
        folded = args.raw or workdir / "folded.txt"
        scenario = next(s for s in SCENARIOS if s.name == args.scenario)
        started = SERVERS[scenario.server_of(args.server)].start(workdir)
        try:
            load = {**scenario.load_of(args.server, False), "duration": args.duration}
            sampler = subprocess.Popen(
                [py_spy, "record", "--pid", str(started.pids[0]), "--rate", str(args.rate), "--format", "raw",
                 "--output", str(folded), "--nonblocking", "--duration", str(int(args.duration) + 4),
                 *(["--gil"] if args.gil else [])],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            finished = subprocess.run(
                loadgen_command(load, started.urls, started.pids, "profile"), cwd=ROOT, capture_output=True, text=True
            )
            sampler.wait()
        finally:
            stop(started)
        print(finished.stdout.strip())
        print(summarize(folded))
    return 0


if __name__ == "__main__":
    sys.exit(main())

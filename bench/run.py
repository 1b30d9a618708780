"""Run every benchmark scenario side by side and write docs/benchmarks.md.

``python -m bench.run`` runs them all (a few minutes on two cores) and rewrites the generated part of
docs/benchmarks.md. ``--quick`` runs short versions to check the tooling. ``--only`` and ``--servers`` pick
a subset; a subset is printed, and written only where ``--output`` says.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.procstat import raise_open_file_limit
from bench.report import RESULTS_PAGE, ROOT, announce, render, write
from bench.scenarios import SCENARIOS, Scenario
from bench.search_corpus import fill
from bench.servers import PYTHON, SERVERS, Unavailable, stop
from bench.targets import Result, Results

OPEN_FILES = 20_000


# The client process of each kind of socket scenario.
LOAD_MODULES = {"sockets": "bench.loadgen", "bigroom": "bench.bigroom", "crowd": "bench.crowd"}


def loadgen_command(
    load: dict[str, Any], urls: list[str], pids: list[int], prefix: str, module: str = "bench.loadgen"
) -> list[str]:
    command = [PYTHON, "-m", module]
    for url in urls:
        command += ["--url", url]
    for pid in pids:
        command += ["--server-pid", str(pid)]
    for key, value in load.items():
        command += [f"--{key}", str(value)]
    return [*command, "--room-prefix", prefix]


PLACEHOLDERS = {"--url": "ws://127.0.0.1:PORT", "--server-pid": "PID", "--room-prefix": "PREFIX"}


def shown(command: list[str]) -> str:
    """The command as a reader would type it: no interpreter path, placeholders for port and PID."""
    words: list[str] = ["python"]
    skip_next = ""
    for word in command[1:]:
        if skip_next:
            words.append(PLACEHOLDERS[skip_next])
            skip_next = ""
            continue
        if word in PLACEHOLDERS:
            skip_next = word
        words.append(word)
    return shlex.join(words)


def run_one(scenario: Scenario, row: str, quick: bool, workdir: Path) -> Result:
    if scenario.kind == "search":
        return run_search(scenario, row, quick, workdir)
    spec = SERVERS[scenario.server_of(row)]
    load = scenario.load_of(row, quick)
    try:
        started = spec.start(workdir)
    except Unavailable as exc:
        return {"skipped": str(exc)}
    try:
        # Labels unique per run: a store kept between runs (Redis, SQL) never mixes two runs' messages.
        prefix = f"{scenario.name.replace('-', '')}{uuid.uuid4().hex[:8]}r"
        command = loadgen_command(load, started.urls, started.pids, prefix, LOAD_MODULES[scenario.kind])
        try:
            finished = subprocess.run(command, cwd=ROOT, capture_output=True, timeout=scenario.timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"load generator did not finish within {scenario.timeout}s"}
        if finished.returncode != 0:
            tail = finished.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
            return {"error": f"load generator exited {finished.returncode}: {tail[0][:300]}"}
        result: Result = json.loads(finished.stdout.decode().strip().splitlines()[-1])
        result["command"] = shown(command)
        for process in started.processes:
            if process.poll() is not None:
                result["error"] = f"server exited with status {process.returncode} during the run"
        return result
    finally:
        stop(started)


def run_search(scenario: Scenario, row: str, quick: bool, workdir: Path) -> Result:
    """Fill one room through the backend, start the server on it, and time the searches client."""
    spec = SERVERS[scenario.server_of(row)]
    load = scenario.load_of(row, quick)
    room = f"search{uuid.uuid4().hex[:8]}"
    filled: dict[str, float] = {}

    def fill_room(url: str) -> None:
        filled.update(fill(url, room, load["messages"]))

    try:
        # Every message kept (retention would prune the room to 10,000 on the next store).
        started = spec.start(workdir, before_start=fill_room, history={"retain_per_room": 0})
    except Unavailable as exc:
        return {"skipped": str(exc)}
    try:
        arguments = {"--url": f"http://127.0.0.1:{started.ports[0]}", "--room": room, "--rounds": load["rounds"]}
        arguments["--server-pid"] = started.pids[0]
        command = [PYTHON, "-m", "bench.searchload", *(str(word) for pair in arguments.items() for word in pair)]
        try:
            finished = subprocess.run(command, cwd=ROOT, capture_output=True, timeout=scenario.timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"search client did not finish within {scenario.timeout}s"}
        if finished.returncode != 0:
            tail = finished.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
            return {"error": f"search client exited {finished.returncode}: {tail[0][:300]}"}
        result: Result = json.loads(finished.stdout.decode().strip().splitlines()[-1])
        result["fill"] = filled
        shown_arguments = {**arguments, "--url": "http://127.0.0.1:PORT", "--room": "LABEL", "--server-pid": "PID"}
        result["command"] = shlex.join(
            ["python", "-m", "bench.searchload", *map(str, sum(shown_arguments.items(), ()))]
        )
        if started.processes[0].poll() is not None:
            result["error"] = f"server exited with status {started.processes[0].returncode} during the run"
        return result
    finally:
        stop(started)


def median_round(scenario: Scenario, rounds: list[Result]) -> Result:
    """The round whose ``scenario.median_of`` is the median, with every round's value beside it."""
    measured = [r for r in rounds if r.get(scenario.median_of) is not None]
    if not measured:
        return rounds[-1]
    measured.sort(key=lambda r: r[scenario.median_of])
    kept = dict(measured[(len(measured) - 1) // 2])
    if len(rounds) > 1:
        kept["rounds"] = {scenario.median_of: [r[scenario.median_of] for r in measured]}
    return kept


def summary(result: Result) -> str:
    if "skipped" in result:
        return f"skipped: {result['skipped']}"
    if "error" in result:
        return f"failed: {result['error']}"
    if "overall_ms" in result:
        overall = result["overall_ms"]
        return (
            f"filled {result['fill']['messages']} messages at {result['fill']['messages_per_s']}/s, "
            f"{result['searches']} searches, p50 {overall['p50']} / p99 {overall['p99']} / max {overall['max']} ms"
        )
    if "redis_rss_kib" in result:
        return (
            f"{result['joined']}/{result['clients']} joined in {result['join_seconds']:g} s, "
            f"{result['join_cpu_us']} us CPU per join, KiB/conn {result['kib_per_connection']}, one message p99 "
            f"{result['one_message']['latency_ms']['p99']} ms, lost {result['lost']}"
        )
    if "join_cpu_us" in result:
        return (
            f"{result['joined']}/{result['clients']} joined, {result['join_cpu_us']} us CPU per join, "
            f"KiB/conn {result.get('kib_per_connection_checkpoint')} / {result.get('kib_per_connection')}, "
            f"p99 one {result['one_message']['latency_ms']['p99']} ms, burst {result['burst']['latency_ms']['p99']} "
            f"ms, lost {result['lost']}, left {result['left_percent_of_empty']}% of empty "
            f"({result['left_growth_percent']:+g}% over the rounds)"
        )
    latency = result["latency_ms"]
    line = (
        f"{result['joined']}/{result['clients']} joined, {result['deliveries_received']}/"
        f"{result['deliveries_expected']} delivered, lost {result['lost']}, {result['deliveries_per_s']}/s, "
        f"p99 {latency['p99']} ms, server {result['server_cpu_us_per_delivery']} us/delivery, "
        f"KiB/conn {result['server_kib_per_connection']}"
    )
    signals = result.get("signals")
    if signals:
        line += (
            f", per client per second {signals['presence_per_client_s']} presence and "
            f"{signals['typing_per_client_s']} typing frames, typing {signals['typing_received']}/"
            f"{signals['typing_expected']}"
        )
    reactions = result.get("reactions")
    if reactions:
        line += (
            f", {reactions['sent']} reactions, frames {reactions['frames_received']}/{reactions['frames_expected']}"
            f", at not increasing {reactions['at_not_increasing']}"
        )
    return line


def rows(scenario: Scenario, servers: list[str] | None) -> list[str]:
    """The scenario's rows ``--servers`` picks (all without it), each followed by the servers named there that
    run alongside it (as ``rooms-pymalloc`` beside ``rooms``)."""
    if not servers:
        return list(scenario.servers)
    names = []
    for name in scenario.servers:
        if scenario.server_of(name) in servers:
            names.append(name)
        names += [spec.name for spec in SERVERS.values() if spec.alongside == name and spec.name in servers]
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs that only check the tooling")
    parser.add_argument("--only", nargs="+", metavar="SCENARIO", choices=[s.name for s in SCENARIOS])
    parser.add_argument("--servers", nargs="+", metavar="SERVER", choices=sorted(SERVERS))
    parser.add_argument("--output", type=Path, help="where to write (default: docs/benchmarks.md for a full run)")
    parser.add_argument("--json", type=Path, help="also write every raw result here")
    args = parser.parse_args(argv)

    raise_open_file_limit(OPEN_FILES)
    subset = bool(args.only or args.servers)
    output = args.output or (None if subset else RESULTS_PAGE)
    command = shlex.join(["python", "-m", "bench.run", *(argv if argv is not None else sys.argv[1:])])
    started_at = time.strftime("%Y-%m-%d %H:%M %Z")
    load_before = os.getloadavg()
    began = time.monotonic()
    runs: list[tuple[Scenario, Results]] = []
    with tempfile.TemporaryDirectory(prefix="rooms-bench-") as tmp:
        for scenario in SCENARIOS:
            if args.only and scenario.name not in args.only:
                continue
            names = rows(scenario, args.servers)
            if not names:
                continue
            rounds: dict[str, list[Result]] = {name: [] for name in names}
            for _ in range(scenario.repeat):
                for name in names:
                    announce(f"[{scenario.name}] {name} ...")
                    rounds[name].append(run_one(scenario, name, args.quick, Path(tmp)))
                    announce(f"[{scenario.name}] {name}: {summary(rounds[name][-1])}")
            runs.append((scenario, {name: median_round(scenario, kept) for name, kept in rounds.items()}))
    minutes = (time.monotonic() - began) / 60
    section = render(runs, command, args.quick, started_at, load_before, os.getloadavg(), minutes)
    if args.json:
        args.json.write_text(json.dumps({s.name: r for s, r in runs}, indent=1))
    if output is None:
        print(section)
    else:
        write(output, section)
        announce(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Renders a benchmark run as Markdown and puts it into docs/benchmarks.md between two markers.

Only the part between the markers is generated; the prose around it (where the time goes, what was
tried) is written by hand and kept across runs.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from bench.scenarios import Scenario
from bench.targets import Result, Results, Target, ok

START = "<!-- bench:results:start -->"
END = "<!-- bench:results:end -->"
ROOT = Path(__file__).resolve().parent.parent
RESULTS_PAGE = ROOT / "docs" / "benchmarks.md"  # a full run rewrites its Results section


def machine() -> dict[str, str]:
    model = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as meminfo:
        total_kib = int(meminfo.readline().split()[1])
    return {
        "cpu": f"{model}, {os.cpu_count()} cores",
        "memory": f"{total_kib / 1024 / 1024:.0f} GiB",
        "kernel": f"{platform.system()} {platform.release()}",
    }


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("tornado", "picows", "uvloop", "peewee", "redis"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "rooms", "backends", "server.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    found["rooms commit"] = commit.stdout.strip() + (" (+ local changes)" if dirty.stdout.strip() else "")
    return found


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _mib(kib: int | None) -> str:
    return "-" if kib is None else f"{kib / 1024:.0f}"


def result_row(name: str, result: Result | None) -> str:
    if result is None:
        return f"| {name} | not run |" + " |" * 10
    if not ok(result):
        reason = result.get("skipped") or result.get("error")
        return f"| {name} | {'skipped' if 'skipped' in result else 'failed'}: {reason} |" + " |" * 10
    latency = result["latency_ms"]
    rss = result["server_rss_kib"]
    cells = [
        name,
        f"{result['joined']}/{result['clients']}",
        f"{result['accepted']}",
        f"{result['deliveries_received']}/{result['deliveries_expected']}",
        f"{result['lost']}/{result['duplicated']}/{result['out_of_order']}",
        f"{result['deliveries_per_s'] or 0:,}",
        f"{result['acked_per_s'] or 0:,}",
        " / ".join(_ms(latency[key]) for key in ("p50", "p90", "p99", "max")),
        _ms(result["server_cpu_us_per_delivery"]),
        _ms(result["loadgen_cpu_us_per_delivery"]),
        f"{_mib(rss['before'])} / {_mib(rss['connected'])} / {_mib(rss['after'])}",
        _ms(result["server_kib_per_connection"]),
    ]
    return "| " + " | ".join(cells) + " |"


HEADER = (
    "| server | joined | messages | deliveries received/expected | lost/dup/ooo | deliveries/s | acked/s "
    "| latency ms p50 / p90 / p99 / max | server CPU us/delivery | load gen CPU us/delivery "
    "| server RSS MiB before / connected / after | KiB/conn |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|"
)


SEARCH_QUERIES = ("rare", "common", "two-words", "prefix", "nothing", "paging")
SEARCH_HEADER = (
    "| server | filled | fill messages/s | searches | "
    + " | ".join(SEARCH_QUERIES)
    + " | all queries | server CPU ms/search |\n"
    + "|---" * (len(SEARCH_QUERIES) + 6)
    + "|"
)


def search_row(name: str, result: Result | None) -> str:
    columns = len(SEARCH_QUERIES) + 5
    if result is None:
        return f"| {name} | not run |" + " |" * (columns - 1)
    if not ok(result):
        reason = result.get("skipped") or result.get("error")
        return f"| {name} | {'skipped' if 'skipped' in result else 'failed'}: {reason} |" + " |" * (columns - 1)

    def latency(figures: dict[str, float]) -> str:
        return " / ".join(_ms(figures[key]) for key in ("p50", "p99", "max"))

    cells = [
        name,
        f"{result['fill']['messages']:,}",
        f"{result['fill']['messages_per_s']:,}",
        f"{result['searches']:,}",
        *(latency(result["latency_ms"][query]) for query in SEARCH_QUERIES),
        latency(result["overall_ms"]),
        _ms(result["server_cpu_ms_per_search"]),
    ]
    return "| " + " | ".join(cells) + " |"


def search_notes(results: Results) -> list[str]:
    """What the queries asked for and what their first page held, from the first server measured."""
    measured = [result for result in results.values() if ok(result)]
    if not measured:
        return []
    words, found = measured[0]["words"], measured[0]["first_page_matches"]
    asked = {
        "rare": repr(words["rare"] + " "),
        "common": repr(words["common"] + " "),
        "two-words": repr(f"{words['common']} {words['middling']} "),
        "prefix": repr(words["prefix"]),
        "nothing": repr(words["missing"] + " "),
        "paging": f"{words['middling'] + ' '!r}, each page before the last",
    }
    listed = ", ".join(f"{query} {asked[query]} ({found[query]} on its first page)" for query in SEARCH_QUERIES)
    return [
        f"Latency in ms, p50 / p99 / max, from request to the whole answer, {measured[0]['limit']} a page. "
        f"Queries: {listed}.",
        "",
    ]


def bigroom_header(results: Results) -> str:
    measured = next((result for result in results.values() if ok(result)), {"checkpoint": 0, "clients": 0})
    checkpoint, clients = f"{measured['checkpoint']:,}", f"{measured['clients']:,}"
    return (
        f"| server | joined | server CPU us/join | KiB/conn at {checkpoint} / {clients} "
        "| one message to all (the median by p99), ms p50 / p99 / max | burst to all, ms p50 / p99 / max "
        "| lost/dup/ooo | server RSS MiB empty / joined / all left | all left, % of empty "
        "| RSS MiB after leaving, by round | joining s |\n" + "|---" * 11 + "|"
    )


def bigroom_row(name: str, result: Result | None) -> str:
    if result is None or not ok(result):
        reason = "not run" if result is None else result.get("skipped") or result.get("error")
        return f"| {name} | {reason} |" + " |" * 9

    def latency(figures: dict[str, Any]) -> str:
        return " / ".join(_ms(figures["latency_ms"][key]) for key in ("p50", "p99", "max"))

    first = result["join_leave_rounds"][0]
    cells = [
        name,
        f"{result['joined']:,}/{result['clients']:,}",
        _ms(result["join_cpu_us"]),
        f"{_ms(result.get('kib_per_connection_checkpoint'))} / {_ms(result.get('kib_per_connection'))}",
        latency(result["one_message"]),
        latency(result["burst"]),
        f"{result['lost']}/{result['duplicated']}/{result['out_of_order']}",
        f"{_mib(result['rss_empty_kib'])} / {_mib(first['rss_joined_kib'])} / {_mib(first['rss_left_kib'])}",
        f"{result['left_percent_of_empty']:g}%",
        " / ".join(_mib(r["rss_left_kib"]) for r in result["join_leave_rounds"]),
        " / ".join(f"{r['join_seconds']:.1f}" for r in result["join_leave_rounds"]),
    ]
    return "| " + " | ".join(cells) + " |"


CROWD_HEADER = (
    "| server | joined | joining s | server CPU us/join | KiB/conn | server RSS MiB empty / joined, each "
    "| client process RSS MiB, each | Redis RSS MiB empty / joined | machine memory in use GiB before / joined "
    "| one message to all, ms p50 / p99 / max | lost/dup/ooo | CPU s while reaching all, servers / clients |\n"
    + "|---" * 12
    + "|"
)


def crowd_row(name: str, result: Result | None) -> str:
    if result is None or not ok(result):
        reason = "not run" if result is None else result.get("skipped") or result.get("error")
        return f"| {name} | {reason} |" + " |" * 10
    rss, redis, machine = result["server_rss_kib"], result["redis_rss_kib"], result["machine_memory_kib"]
    latency = result["one_message"]["latency_ms"]
    cells = [
        name,
        f"{result['joined']:,}/{result['clients']:,}",
        f"{result['join_seconds']:.1f}",
        _ms(result["join_cpu_us"]),
        _ms(result["kib_per_connection"]),
        f"{_mib(min(rss['empty']))}-{_mib(max(rss['empty']))} / {_mib(min(rss['joined']))}-{_mib(max(rss['joined']))}",
        f"{_mib(min(result['client_rss_kib']))}-{_mib(max(result['client_rss_kib']))}",
        f"{_mib(redis['empty'])} / {_mib(redis['joined'])}",
        f"{machine['before'] / 1024**2:.2f} / {machine['joined'] / 1024**2:.2f}",
        " / ".join(_ms(latency[key]) for key in ("p50", "p99", "max")),
        f"{result['lost']}/{result['duplicated']}/{result['out_of_order']}",
        f"{result['reach_cpu_s']['servers']:g} / {result['reach_cpu_s']['clients']:g}",
    ]
    return "| " + " | ".join(cells) + " |"


def signals_line(signals: dict[str, Any]) -> str:
    """The presence and typing frames a run's clients received while measuring."""
    return (
        f"per client per second, {signals['presence_per_client_s']:g} presence and "
        f"{signals['typing_per_client_s']:g} typing frames received ({signals['presence_received']:,} and "
        f"{signals['typing_received']:,} in {signals['seconds']:g} s; {signals['typists']} typists sent "
        f"{signals['typing_sent']:,} typing frames, {signals['typing_received']:,} of the "
        f"{signals['typing_expected']:,} relays they make if none is dropped arrived)."
    )


def reactions_line(reactions: dict[str, Any]) -> str:
    """The reactions a run's clients sent and the reactions frames they received while measuring."""
    return (
        f"{reactions['reactors']} clients sent {reactions['sent']:,} reactions ({reactions['sent_per_s']:g}/s, "
        f"one each every {reactions['interval_s']:g} s); {reactions['frames_received']:,} of the "
        f"{reactions['frames_expected']:,} reactions frames arrived, {reactions['at_not_increasing']} with an "
        "`at` not above the one before; server CPU per delivery counts messages and reactions frames."
    )


def target_row(target: Target) -> str:
    verdict = {True: "met", False: "**missed**", None: "not judged"}[target.met]
    return f"| {target.what} | {target.measured} | {verdict} |"


def render(
    runs: list[tuple[Scenario, Results]],
    command: str,
    quick: bool,
    started: str,
    load_before: tuple[float, ...],
    load_after: tuple[float, ...],
    minutes: float,
) -> str:
    lines = [
        START,
        "## Results",
        "",
        f"Produced by `{command}` on {started}, in {minutes:.1f} minutes"
        + (" (**quick run**: sizes only check that the tooling works)." if quick else "."),
        "",
    ]
    lines += [f"- {key}: {value}" for key, value in machine().items()]
    lines.append(
        "- load average (1/5/15 min) before: "
        + " ".join(f"{x:.2f}" for x in load_before)
        + ", after: "
        + " ".join(f"{x:.2f}" for x in load_after)
    )
    lines.append("- versions: " + ", ".join(f"{key} {value}" for key, value in versions().items()))
    lines.append("")
    all_targets: list[Target] = []
    for scenario, results in runs:
        lines += [f"### {scenario.title}", ""]
        # The scenario's rows, then any run only when named (as rooms-pymalloc).
        names = [*scenario.servers, *(name for name in results if name not in scenario.servers)]
        if scenario.kind == "search":
            lines += [SEARCH_HEADER, *(search_row(name, results.get(name)) for name in names), ""]
            lines += search_notes(results)
        elif scenario.kind == "bigroom":
            lines += [bigroom_header(results), *(bigroom_row(name, results.get(name)) for name in names), ""]
        elif scenario.kind == "crowd":
            lines += [CROWD_HEADER, *(crowd_row(name, results.get(name)) for name in names), ""]
        else:
            lines += [HEADER, *(result_row(name, results.get(name)) for name in names), ""]
        for name, result in results.items():
            for key, values in result.get("rounds", {}).items():
                lines.append(f"{name}: median of {len(values)} rounds by {key} ({', '.join(map(str, values))}).")
        if any("rounds" in result for result in results.values()):
            lines.append("")
        for name, result in results.items():
            if ok(result) and "signals" in result:
                lines.append(f"{name}: {signals_line(result['signals'])}")
                lines.append("")
            if ok(result) and "reactions" in result:
                lines.append(f"{name}: {reactions_line(result['reactions'])}")
                lines.append("")
        commands = [(name, r["command"]) for name, r in results.items() if ok(r) and "command" in r]
        if commands:
            if scenario.kind == "search":
                lines.append(
                    "Each server's store filled through the backend before it started; then: `"
                    + commands[0][1]
                    + "` (port, PID and a fresh room label per server)."
                )
            else:
                client = "Clients" if scenario.kind in ("bigroom", "crowd") else "Load generator"
                lines.append(f"{client}: `{commands[0][1]}` (port, PID and a fresh room prefix per server).")
            for name, command in commands[1:]:
                if command != commands[0][1] and name in scenario.variants:
                    lines.append(f"For {name}: `{command}`.")
            lines.append("")
        targets = scenario.targets(results)
        all_targets += targets
        lines += ["| target | measured | verdict |", "|---|---|---|"]
        lines += [target_row(target) for target in targets]
        lines.append("")
    met = sum(1 for t in all_targets if t.met)
    missed = sum(1 for t in all_targets if t.met is False)
    lines.append(f"Targets: {met} met, {missed} missed, {len(all_targets) - met - missed} not judged.")
    lines.append(END)
    return "\n".join(lines) + "\n"


def write(path: Path, section: str) -> None:
    """Replace the generated section of ``path``, keeping everything around it."""
    if path.exists():
        text = path.read_text()
        if START in text and END in text:
            before, rest = text.split(START, 1)
            after = rest.split(END, 1)[1].lstrip("\n")
            path.write_text(before + section + ("\n" + after if after else ""))
            return
        path.write_text(text.rstrip("\n") + "\n\n" + section)
        return
    path.write_text("# Benchmarks\n\n" + section)


def announce(line: str) -> None:
    print(line, file=sys.stderr, flush=True)

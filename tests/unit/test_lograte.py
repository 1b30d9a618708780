"""Repeated log lines: a few per template and minute pass, then one line says how many were dropped."""

from __future__ import annotations

import logging

from rooms.service.lograte import RepeatedLinesFilter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.levelname} {record.getMessage()}")


def limited(clock: Clock) -> Collected:
    handler = Collected()
    handler.addFilter(RepeatedLinesFilter(handler, lines=5, seconds=60, clock=clock))
    return handler


def record(msg: str, *args: object, name: str = "rooms.x", level: int = logging.WARNING) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_a_template_passes_five_times_a_minute_then_one_line_counts_the_dropped():
    clock = Clock()
    handler = limited(clock)
    for n in range(12):
        handler.handle(record("peer %s went away", n))
    assert handler.lines == [f"rooms.x WARNING peer {n} went away" for n in range(5)]

    clock.now += 60
    handler.handle(record("peer %s went away", "again"))
    assert handler.lines[5:] == [
        "rooms.x WARNING suppressed 7 more lines like 'peer %s went away'",
        "rooms.x WARNING peer again went away",
    ]


def test_logger_level_and_template_each_make_their_own_key():
    clock = Clock()
    handler = limited(clock)
    for _ in range(6):
        handler.handle(record("a"))
        handler.handle(record("a", level=logging.ERROR))
        handler.handle(record("a", name="rooms.y"))
        handler.handle(record("b"))
    assert len(handler.lines) == 4 * 5


def test_the_access_log_keeps_every_request_served_and_limits_refused_ones_per_status():
    clock = Clock()
    handler = limited(clock)
    template = "%d %s %.2fms"
    for n in range(20):
        handler.handle(record(template, 200, f"GET /r{n}/ (127.0.0.1)", 1.0, name="tornado.access", level=logging.INFO))
        handler.handle(record(template, 404, f"GET /x{n} (127.0.0.1)", 1.0, name="tornado.access"))
        handler.handle(record(template, 429, "GET /chat/r/ (127.0.0.1)", 1.0, name="tornado.access"))
    assert sum(" 200 " in line for line in handler.lines) == 20
    assert sum(" 404 " in line for line in handler.lines) == 5
    assert sum(" 429 " in line for line in handler.lines) == 5


def test_the_summary_is_said_once_and_not_for_a_minute_without_drops():
    clock = Clock()
    handler = limited(clock)
    for _ in range(6):
        handler.handle(record("dropped once"))
    handler.handle(record("quiet"))
    clock.now += 61
    handler.handle(record("later"))
    clock.now += 61
    handler.handle(record("later still"))
    summaries = [line for line in handler.lines if "suppressed" in line]
    assert summaries == ["rooms.x WARNING suppressed 1 more lines like 'dropped once'"]
    assert handler.lines[-1] == "rooms.x WARNING later still"


def test_every_sockets_end_passes_as_its_handshakes_access_line_does():
    handler = limited(Clock())
    for n in range(12):
        handler.handle(record("socket closed: room %s", f"r{n}", name="rooms.socket", level=logging.INFO))
    assert len(handler.lines) == 12

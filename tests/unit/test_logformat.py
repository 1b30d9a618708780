"""The log's two formats: text as it always was, JSON one object a line with ``ts``, ``level``, ``logger``,
``message`` and the event's own fields; either way credentials masked and floods limited."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from datetime import datetime

import pytest

from rooms.service.logformat import configure_logging, formatter_for


@pytest.fixture
def log_to() -> Iterator[list[logging.Handler]]:
    """Handlers a test installs on the root logger, taken off again after it."""
    installed: list[logging.Handler] = []
    level = logging.getLogger().level
    yield installed
    for handler in installed:
        logging.getLogger().removeHandler(handler)
    logging.getLogger().setLevel(level)


def record(msg: str, *args: object, level: int = logging.INFO, **fields: object) -> logging.LogRecord:
    made = logging.LogRecord("rooms.test", level, __file__, 1, msg, args, None)
    made.__dict__.update(fields)  # as ``extra=`` sets them
    return made


def test_a_json_line_has_ts_level_logger_message_then_the_events_own_fields():
    line = formatter_for("json").format(record("%d requests", 3, level=logging.WARNING, status=200, path="/a"))
    assert "\n" not in line
    fields = json.loads(line)
    assert list(fields)[:4] == ["ts", "level", "logger", "message"]
    assert fields["level"] == "WARNING" and fields["logger"] == "rooms.test" and fields["message"] == "3 requests"
    assert fields["status"] == 200 and fields["path"] == "/a"
    assert datetime.fromisoformat(fields["ts"]).utcoffset().total_seconds() == 0  # UTC, ISO 8601


def test_a_json_line_carries_a_traceback_whole_on_one_line():
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        failed = logging.LogRecord("rooms.test", logging.ERROR, __file__, 1, "it failed", None, sys.exc_info())
    line = formatter_for("json").format(failed)
    assert "\n" not in line
    fields = json.loads(line)
    assert fields["message"] == "it failed" and "ValueError: bad\nvalue" in fields["exc_info"]


def test_text_lines_are_as_they_were():
    line = formatter_for("text").format(record("room %s opened", "lobby", status=200))
    assert line.endswith(" INFO rooms.test: room lobby opened")


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_either_format_masks_credentials_and_escapes_controls(log_to, log_format):
    stream = io.StringIO()
    log_to.append(configure_logging("info", log_format, stream))
    logging.getLogger("tornado.access").info("200 GET /lobby/?token=%s (1.2.3.4)\x85", "eyJsecret.part.sig")
    written = stream.getvalue()
    assert written.count("\n") == 1 and "eyJsecret" not in written
    message = json.loads(written)["message"] if log_format == "json" else written
    assert "GET /lobby/?token=******** (1.2.3.4)\\x85" in message


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_either_format_limits_a_repeated_template(log_to, log_format):
    stream = io.StringIO()
    log_to.append(configure_logging("info", log_format, stream))
    for n in range(8):
        logging.getLogger("rooms.test").warning("backend down: %d", n)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 5
    if log_format == "json":
        assert [json.loads(line)["message"] for line in lines] == [f"backend down: {n}" for n in range(5)]


def test_the_level_holds_back_what_is_below_it(log_to):
    stream = io.StringIO()
    log_to.append(configure_logging("warning", "json", stream))
    logging.getLogger("rooms.test").info("not shown")
    logging.getLogger("rooms.test").warning("shown")
    assert [json.loads(line)["message"] for line in stream.getvalue().splitlines()] == ["shown"]

"""JSON log lines: our lean formatter writes what structlog's pipeline wrote, byte for
byte but the timestamp, for less CPU."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest
import structlog

from symposia.observability import log_context
from symposia.observability.logging import JsonLines, configure_logging


def _structlog_formatter() -> logging.Formatter:
    """The pipeline `configure_logging` used for JSON lines before `JsonLines` (the
    request's fields now bound in `log_context`, merged as structlog merged its own)."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            log_context.merge_bound_fields,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
            lambda _, __, event: {k: v for k, v in event.items() if k != "color_message"},
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )


def _records() -> Iterator[logging.LogRecord]:
    yield logging.LogRecord("symposia.http", logging.INFO, __file__, 1, "request %s", ("x",), None)
    record = logging.LogRecord("uvicorn.error", logging.WARNING, __file__, 2, "up", (), None)
    record.__dict__.update({"color_message": "\x1b[1mup\x1b[0m", "n": 1, "obj": object})
    yield record
    try:
        raise ZeroDivisionError("boom")
    except ZeroDivisionError:
        import sys

        yield logging.LogRecord("symposia", logging.ERROR, __file__, 3, "x", (), sys.exc_info())


def _without_time(line: str) -> str:
    stamp = json.loads(line)["timestamp"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", stamp)
    return line.replace(stamp, "")


@pytest.fixture
def context() -> Iterator[None]:
    log_context.bind(request_id="r-1")
    yield
    log_context.unbind("request_id")


@pytest.mark.usefixtures("context")
def test_lines_are_those_structlog_wrote() -> None:
    ours, theirs = JsonLines(), _structlog_formatter()
    for record in _records():
        assert _without_time(ours.format(record)) == _without_time(theirs.format(record))


def test_json_logging_uses_the_lean_formatter() -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging("INFO", json_lines=True, stream=io.StringIO())
        assert isinstance(root.handlers[0].formatter, JsonLines)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)

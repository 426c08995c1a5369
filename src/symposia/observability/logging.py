"""Logging: one stdlib pipeline, rendered as JSON lines or (by structlog) a readable console.

Everything logs through stdlib `logging` (our modules, uvicorn, the SDKs); `JsonLines`, or
structlog's `ProcessorFormatter` for the console, renders each record with its `extra=`
fields and the request's bound fields (`log_context`). The SDKs' own loggers
stay at WARNING whatever LOG_LEVEL says: at DEBUG they print whole request bodies, and
prompts must never reach a log; the WebSocket library's DEBUG wire dumps (headers with
keys and cookies) are filtered out of the logger uvicorn gives it.
"""

from __future__ import annotations

import datetime
import json
import logging
import logging.handlers
import os
import sys
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any, TextIO

from symposia.observability.log_context import bind, bound_fields, merge_bound_fields

if TYPE_CHECKING:
    from symposia.settings import Settings

# Third-party loggers that would print request bodies, headers or SQL parameters (so
# message text) at DEBUG.
QUIET_LOGGERS = (
    "aiosqlite",
    "alembic",
    "asyncpg",
    "sqlalchemy",
    "httpcore2",
    "openai",
    "anthropic",
    "httpx",
    "sse_starlette",  # logs every chunk it sends, model text included, at DEBUG
    "httpx2",
    "httpcore",
    "botocore",
    "boto3",
    "urllib3",
    "hpack",
    "llama_cpp",
    "websockets",  # handshake headers and frames at DEBUG (also filtered below)
)


# uvicorn hands the `websockets` library its own "uvicorn.error" logger, and at DEBUG that
# library dumps every handshake header (`x-api-key`, the session cookie) and the start of
# every frame (an `auth` message's key) there.
WEBSOCKET_LOGGERS = ("uvicorn.error",)
_WEBSOCKETS_PACKAGE = f"{os.sep}websockets{os.sep}"


class NoWebSocketWireDebug(logging.Filter):
    """Drops the `websockets` library's DEBUG records (handshake headers, frames), whatever
    logger they were given; its warnings and errors, and uvicorn's own lines, pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG or _WEBSOCKETS_PACKAGE not in record.pathname


_NO_WIRE_DEBUG = NoWebSocketWireDebug()


def quiet_third_party() -> None:
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in WEBSOCKET_LOGGERS:
        logger = logging.getLogger(name)
        if _NO_WIRE_DEBUG not in logger.filters:
            logger.addFilter(_NO_WIRE_DEBUG)


# What every LogRecord has; anything else on a record came from `extra=`.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's ANSI copy of the message
}


# structlog's JSONRenderer: `json` with its separators, anything else as its repr.
_ENCODER = json.JSONEncoder(default=repr)


class JsonLines(logging.Formatter):
    """A record as one JSON line, as structlog's pipeline below renders it (event, context
    variables, level, logger, `extra=` fields, timestamp, exception), byte for byte, for
    about 60% of its CPU: that pipeline copies every record and runs six processors on
    it, about 20 us a line, and each request logs two."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {"event": record.getMessage()}
        event.update(bound_fields())
        event["level"] = record.levelname.lower()
        event["logger"] = record.name
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS:
                event[key] = value
        stamp = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        event["timestamp"] = stamp.isoformat().replace("+00:00", "Z")
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        return _ENCODER.encode(event)


def _drop_color(
    logger: object, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    event.pop("color_message", None)  # uvicorn's ANSI copy of the message
    return event


def console_formatter() -> logging.Formatter:
    """structlog's readable console lines (structlog loaded only now: see `log_context`)."""
    import structlog

    shared: list[structlog.types.Processor] = [
        merge_bound_fields,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        _drop_color,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.dev.ConsoleRenderer(),
        ],
    )


def file_handler(path: str, max_bytes: int, backups: int) -> logging.Handler:
    """JSON lines appended to `path`: rotated at `max_bytes` keeping `backups` old files, or,
    with `max_bytes` 0, reopened when an outside rotation (logrotate) moves it: the way
    for several processes on one file, which cannot rotate it themselves."""
    handler: logging.Handler
    if max_bytes > 0:
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
    else:
        handler = logging.handlers.WatchedFileHandler(path, encoding="utf-8")
    handler.setFormatter(JsonLines())
    return handler


def configure_logging(
    level: str = "INFO",
    json_lines: bool = True,
    stream: TextIO | None = None,
    extra: list[logging.Handler] | None = None,
) -> None:
    """Route every log record through structlog's renderer, on stderr (or `stream`), and
    to the `extra` handlers (LOG_FILE's)."""
    formatter = JsonLines() if json_lines else console_formatter()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in root.handlers:
        if isinstance(old, logging.FileHandler):
            old.close()  # configured again (each worker, a test): no file left open
    root.handlers[:] = [handler, *(extra or [])]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    quiet_third_party()


def configure_serve_logging(settings: Settings) -> None:
    """`serve`'s logging, in its process or each worker's: JSON lines, or a readable console
    in DEV_MODE or on a terminal; LOG_FILE also gets JSON lines. ENVIRONMENT, when set, is
    on every line."""
    extra = []
    if settings.log_file:
        extra.append(
            file_handler(settings.log_file, settings.log_file_max_bytes, settings.log_file_backups)
        )
    configure_logging(
        settings.log_level,
        json_lines=not (settings.dev_mode or sys.stderr.isatty()),
        extra=extra,
    )
    if settings.environment:
        bind(environment=settings.environment)

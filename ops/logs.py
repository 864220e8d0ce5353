"""Structured logs: with `LOG_FORMAT=json` every line a process writes is one JSON
object — time (UTC), level, logger, message, and the request id, firm id and job id
when they are known (`ops.context`), a record's extras but a failed job's arguments;
a traceback in `exc`. Tokens and links are masked before any handler sees a record
(`core.platform.logs`), and in the extras here too.

`configure` (called by `wiring.start` in every process) swaps the format of the
root logger's handler, not what is logged: the levels stay as each process sets them.
Gunicorn's own loggers (its errors and the access log) are configured by
`gunicorn.conf.py` with `gunicorn_logconfig`.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from core.platform import logs

from . import context

# Attributes every LogRecord has; anything else came from `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName"}
# Extras never written: a failed job's arguments (RQ logs them with its exception).
_UNWRITTEN = frozenset({"arguments", "kwargs", "args_repr"})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **context.current(),
        }
        for key, value in record.__dict__.items():  # extra={...}, masked as the message
            if key not in _STANDARD and key not in _UNWRITTEN and not key.startswith("_"):
                line.setdefault(key, logs.masked(value) if isinstance(value, str) else value)
        if record.exc_info or record.exc_text:
            # `exc_text` is the masked traceback `core.platform.logs` made
            line["exc"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def configure(log_format: str, stream=None) -> None:
    """`json`: the root logger writes JSON lines (to stderr), in place of the plain
    handler `logging.basicConfig` gave it; `text`: nothing changes. Once is enough."""
    if log_format != "json":
        return
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    for handler in [h for h in root.handlers if type(h) is logging.StreamHandler]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)


def gunicorn_logconfig() -> dict:
    """Gunicorn's `logconfig_dict` for JSON lines: its error and access loggers hand
    their records to the root logger's JSON handler."""
    return {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"json": {"class": "logging.StreamHandler", "formatter": "json",
                              "stream": "ext://sys.stderr"}},
        "root": {"level": "INFO", "handlers": ["json"]},
        "loggers": {name: {"level": "INFO", "handlers": [], "propagate": True}
                    for name in ("gunicorn.error", "gunicorn.access")},
    }

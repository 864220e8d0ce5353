"""Log lines never carry a working link: every record made in the process (ours,
gunicorn's access log, werkzeug's, RQ's) has its link tokens masked before any
handler sees it, tracebacks included. Installed once by `runtime.start`."""

from __future__ import annotations

import logging
import traceback

from . import tokens

_installed = False


def redact_tokens() -> None:
    global _installed
    if _installed:
        return
    make = logging.getLogRecordFactory()

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = make(*args, **kwargs)
        try:
            record.msg, record.args = tokens.redact(record.getMessage()), None
        except Exception:  # noqa: BLE001 - a bad format string stays as it was
            return record
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = tokens.redact("".join(traceback.format_exception(*record.exc_info))
                                            .rstrip("\n"))
        return record

    logging.setLogRecordFactory(factory)
    _installed = True

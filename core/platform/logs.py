"""Log lines never carry a working link or a credential: every record made in the
process (ours, gunicorn's access log, werkzeug's, RQ's, the Slack SDK's) has its
link tokens, Slack tokens, bearer headers and OAuth codes masked before any handler
sees it, tracebacks included. Installed once by `wiring.start`."""

from __future__ import annotations

import logging
import re
import traceback

from . import tokens

_installed = False
# Slack tokens (bot, user, app, config, refresh; rotating ones start `xoxe.`), bearer
# headers, and OAuth codes and secrets as the Slack SDK's debug lines show them; Plaid's
# access, public and link tokens (`access-sandbox-…`, `access-production-…`) and our
# API tokens (`lsk_…`), wherever they appear.
_CREDENTIALS = re.compile(
    r"(?P<keep>\b(?:xoxe\.)?xox[abeoprs]-|Bearer |Basic |with code: |[?&]code="
    r"|\b(?:access|public|link)-(?:sandbox|development|production)-|\blsk_"
    r"|['\"](?:code|client_secret|refresh_token|access_token|token|public_token|link_token"
    r"|secret)['\"]:\s*['\"])"
    r"(?P<secret>[A-Za-z0-9._~+/=-]{4,})")


def masked(text: str) -> str:
    """`text` with every link token and credential masked (first four characters kept)."""
    text = tokens.redact(text)
    return _CREDENTIALS.sub(lambda m: m["keep"] + m["secret"][:4] + tokens.MASK, text)


def redact_tokens() -> None:
    global _installed
    if _installed:
        return
    make = logging.getLogRecordFactory()

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = make(*args, **kwargs)
        try:
            record.msg, record.args = masked(record.getMessage()), None
        except Exception:  # noqa: BLE001 - a bad format string stays as it was
            return record
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = masked("".join(traceback.format_exception(*record.exc_info))
                                     .rstrip("\n"))
        return record

    logging.setLogRecordFactory(factory)
    _installed = True

"""Error reports to Sentry (or anything that speaks its protocol), when SENTRY_DSN is
set: unexpected errors of the web app (Flask), of jobs (RQ: once a job has no retry
left), and every error logged (`log.exception`, `log.error`: the 500 page's and
Slack's "quote ref …" among them), with the request id, firm id and job id as tags.

Nothing leaves unmasked (`scrub`): every string in the report — the message, the
exception's text, each frame's local variables, the request, breadcrumbs — goes
through the logs' own masking (`core.platform.logs.masked`: link tokens, Slack,
Plaid and API tokens, bearer headers, OAuth codes), then six-digit numbers (a
sign-in code's shape) and the secrets of the settings (keys, auth tokens,
passwords in URLs) are masked too, and the values of keys named like a secret
(token, secret, password, key, session, nonce, code…) are dropped. The SDK itself is
told to collect no user, cookies, request bodies or job arguments.

Needs sentry-sdk 2.76 or later (its `data_collection` option; 3.x is the same but
for the logging integration, whose `level` there means Sentry's own log product).
"""

from __future__ import annotations

import logging
import re
import secrets
from urllib.parse import urlsplit

from core.platform import logs
from core.platform.config import Settings

from . import context

FILTERED = "[Filtered]"
CODE_MASK = "••••••"
_CODE = re.compile(r"(?<![\w.])\d{6}(?![\w])")  # a sign-in code, wherever it shows
# Keys whose values are dropped wherever they appear (locals, headers, extra…).
_SECRET_KEY = re.compile(r"secret|token|passw|pwd|auth|cookie|session|csrf|signature|"
                         r"credential|verification|nonce|sealed|dsn|key|^code$|^asked$", re.I)
# What Sentry reads about the event itself, never a user's data.
_STRUCTURAL = frozenset({"event_id", "timestamp", "start_timestamp", "platform", "level",
                         "sdk", "modules", "release", "environment", "server_name", "type",
                         "debug_meta", "fingerprint", "logger", "transaction_info"})
_known: list[str] = []  # the settings' secrets, longest first
_started_with: list[str] = []  # the DSN the SDK was started with


def init(settings: Settings) -> bool:
    """Start the SDK when SENTRY_DSN is set (once per DSN); True when reports go."""
    remember_secrets(settings)
    if not settings.sentry_dsn or _started_with == [settings.sentry_dsn]:
        return bool(settings.sentry_dsn)
    import sentry_sdk

    sentry_sdk.init(dsn=settings.sentry_dsn, environment=settings.sentry_environment,
                    integrations=_integrations(sentry_sdk.VERSION), before_send=scrub,
                    before_breadcrumb=scrub_breadcrumb, traces_sample_rate=None,
                    data_collection={
                        "user_info": False, "cookies": {"mode": "off"},
                        "http_headers": {"request": {"mode": "denylist"}},
                        "http_bodies": [], "url_query_params": {"mode": "denylist"},
                        "queues": False,
                        "stack_frame_variables": {"mode": "denylist",
                                                  "terms": ["nonce", "sealed", "dsn"]},
                    })
    _started_with[:] = [settings.sentry_dsn]
    return True


def reference() -> str:
    """A short reference for one error, quoted to support and found in the log and the
    report: six hex digits, the first a letter (all digits, it would be masked in the
    report as a sign-in code is)."""
    return secrets.choice("abcdef") + secrets.token_hex(3)[1:]


def stop(timeout: float = 2.0) -> None:
    """Send what is waiting (for up to `timeout` seconds), then no more reports (tests;
    a process that ends)."""
    if not _started_with:
        return
    import sentry_sdk

    sentry_sdk.get_client().close(timeout=timeout)
    sentry_sdk.init(dsn=None)
    _started_with.clear()


def _integrations(version: str) -> list:
    from sentry_sdk.integrations.flask import FlaskIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration
    from sentry_sdk.integrations.rq import RqIntegration

    if int(version.split(".")[0]) >= 3:  # 3.x: `level` is Sentry Logs; no events by default
        logged = LoggingIntegration(level=None, event_level=logging.ERROR,
                                    breadcrumb_level=logging.INFO)
    else:  # 2.x: `level` is breadcrumbs
        logged = LoggingIntegration(level=logging.INFO, event_level=logging.ERROR)
    return [FlaskIntegration(), RqIntegration(), logged]


def remember_secrets(settings: Settings) -> None:
    """The settings' secrets, masked by value wherever they show up in a report."""
    found = [settings.secret_key, *settings.secret_key_fallbacks, *settings.encryption_keys,
             settings.slack_signing_secret, settings.slack_bot_token,
             settings.slack_client_secret, settings.twilio_auth_token, settings.plaid_secret,
             settings.metrics_token,
             *(urlsplit(url).password for url in (settings.database_url, settings.redis_url,
                                                  settings.smtp_url, settings.sentry_dsn))]
    _known[:] = sorted({s for s in found if s and len(s) >= 8}, key=len, reverse=True)


def masked(text: str) -> str:
    """`text` as a report may carry it: the logs' masking, sign-in codes, secrets."""
    text = _CODE.sub(CODE_MASK, logs.masked(text))
    for secret in _known:
        text = text.replace(secret, FILTERED)
    return text


def scrubbed(value, depth: int = 0):
    """`value` with every string masked and the values of secret-named keys dropped."""
    if depth > 30:
        return FILTERED
    if isinstance(value, str):
        return masked(value)
    if isinstance(value, dict):
        return {key: FILTERED if _secret(key, item) else scrubbed(item, depth + 1)
                for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [scrubbed(item, depth + 1) for item in value]
    return value


def _secret(key, value) -> bool:
    return isinstance(key, str) and bool(_SECRET_KEY.search(key)) and value not in (None, "")


def scrub(event: dict, hint=None) -> dict | None:
    """Sentry's `before_send`: the event masked, tagged with the ids bound now; never
    sent unmasked (a failure here drops it)."""
    try:
        job = (event.get("extra") or {}).get("rq-job")
        if isinstance(job, dict):  # its description repeats the arguments
            job["description"] = job.get("func")
        event = {key: value if key in _STRUCTURAL else scrubbed(value)
                 for key, value in event.items()}
        if isinstance(event.get("tags", {}), dict):
            event["tags"] = {**event.get("tags", {}),
                             **{k: str(v) for k, v in context.current().items()}}
    except Exception:  # noqa: BLE001 - better no report than an unmasked one
        return None
    return event


def scrub_breadcrumb(crumb: dict, hint=None) -> dict | None:
    try:
        return scrubbed(crumb)
    except Exception:  # noqa: BLE001
        return None

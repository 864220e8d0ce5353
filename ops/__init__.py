"""Operating the service: what an operator sees of it — Prometheus metrics
(`metrics`), error reports (`errors`, Sentry), structured logs (`logs`) with a
request id carried into the jobs a request enqueues (`context`). Drivers and jobs
record here; core knows nothing of it.
"""

from __future__ import annotations

from core.platform.config import Settings


def start(settings: Settings) -> None:
    """What every process does for its operator at start (`wiring.start`): JSON log
    lines with LOG_FORMAT=json, error reports with SENTRY_DSN. Again is harmless."""
    from . import errors, logs

    logs.configure(settings.log_format)
    errors.init(settings)

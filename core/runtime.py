"""Start-up of core for any process: settings, database, log redaction. (`wiring.wire`
calls it, then connects the drivers.)"""

from __future__ import annotations

from core.messaging import outbound
from core.platform import config, db, logs


def start(settings: config.Settings | None = None) -> config.Settings:
    logs.redact_tokens()
    current = config.use(settings or config.settings())
    db.bind(current.database_url)
    outbound.reset_senders()
    return current

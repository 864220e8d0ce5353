"""The digest's jobs: every minute the clock (`ledgersync cron`) runs `due`, which
sends each firm's digest whose time has come in its zone (Mondays at 9:00, or daily)
and isn't written yet; `send` does one firm's. Each loads its state by id and calls core
(`core.reports.digest`), and is idempotent: the digest's row, keyed by firm and day, is
written once, in the transaction that writes its notice — so two clocks, a job run
twice, or a clock back at 9:20 after missing 9:00 send it once."""

from __future__ import annotations

import logging

from core.platform import clock
from core.reports import digest

from .tasks import unit_of_work

log = logging.getLogger(__name__)


@unit_of_work
def due() -> str:
    """Every minute: the digests due now, each sent once. One firm's failure is logged
    and the others still go (the next minute tries it again)."""
    now = clock.now()
    sent = [_send(firm_id, now) for firm_id in digest.due(now)].count("sent")
    return f"{sent} digest{'' if sent == 1 else 's'} sent"


@unit_of_work
def send(firm_id: int) -> str:
    return digest.send(firm_id)


def _send(firm_id: int, now) -> str:
    try:
        return digest.send(firm_id, now)
    except Exception:  # noqa: BLE001 - one firm's digest never stops the others
        log.exception("the digest of firm %s failed; the next minute tries again", firm_id)
        return "failed"

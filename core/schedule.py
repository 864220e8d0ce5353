"""Asks for work at a time. When an invite goes out, its reminder and its expiry
are scheduled at their exact times; the jobs layer installs RQ's scheduler here.

Nothing depends on a schedule being kept: the periodic sweep (`core.sweep`) finds
in the database whatever is due and was not done (Redis flushed, a worker lost).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

log = logging.getLogger(__name__)

Backend = Callable[[str, int, datetime], None]  # (task: remind|expire, invite id, when)
_backend: Backend | None = None


def install(backend: Backend | None) -> None:
    global _backend
    _backend = backend


def at(task: str, invite_id: int, when: datetime) -> None:
    if _backend is None:
        return
    try:
        _backend(task, invite_id, when)
    except Exception:  # noqa: BLE001 - the sweep catches up; never fail the user's action
        log.warning("could not schedule %s for invite %s; the sweep will catch up", task,
                    invite_id, exc_info=True)


def invite_sent(invite) -> None:
    at("remind", invite.id, invite.reminder_due_at)
    at("expire", invite.id, invite.expires_at)

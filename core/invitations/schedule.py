"""Asks for work at a time. When an invite goes out, its reminder and its expiry
are scheduled at their exact times, through the `scheduler` port (`core.ports`: RQ's
scheduler when there is a queue).

Nothing depends on a schedule being kept: the periodic sweep (`core.invitations.sweep`) finds
in the database whatever is due and was not done (Redis flushed, a worker lost).
A bulk run's invites are not scheduled one by one: inside `held()` their times are
collected, and the run asks for one catch-up of what is due at the latest of them
(`latest`), a few per run instead of two jobs an invite.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

from core import ports

log = logging.getLogger(__name__)

_held: ContextVar[list | None] = ContextVar("held_schedules", default=None)


@contextmanager
def held(into: list):
    """Collect (task, invite id, when) instead of scheduling each (see `latest`)."""
    token = _held.set(into)
    try:
        yield into
    finally:
        _held.reset(token)


def latest(wanted: list) -> dict[str, datetime]:
    """For each task, the latest time `held` collected: one catch-up then finds every
    one of them due."""
    times: dict[str, datetime] = {}
    for task, _invite_id, when in wanted:
        times[task] = max(when, times.get(task, when))
    return times


def at(task: str, invite_id: int, when: datetime) -> None:
    collecting = _held.get()
    if collecting is not None:
        collecting.append((task, invite_id, when))
        return
    scheduler = ports.current().scheduler
    if scheduler is None:
        return
    try:
        scheduler(task, invite_id, when)
    except Exception:  # noqa: BLE001 - the sweep catches up; never fail the user's action
        log.warning("could not schedule %s for invite %s; the sweep will catch up", task,
                    invite_id, exc_info=True)


def invite_sent(invite) -> None:
    at("remind", invite.id, invite.reminder_due_at)
    at("expire", invite.id, invite.expires_at)

"""The one Slack message that shows a bulk run's progress, updated in place
(`chat.update`) at most every few seconds per process, then the final summary."""

from __future__ import annotations

import logging
import threading
import time

from slack_sdk.errors import SlackApiError

from core.invitations import bulk_runs
from core.platform.config import settings
from core.records import BulkRun, Firm

from . import bulk_commands
from . import slack_api as slack_client

log = logging.getLogger(__name__)
EVERY = 3.0  # seconds between updates of one run (chat.update allows ~50 a minute)
_last: dict[int, float] = {}
_lock = threading.Lock()


def post(run: BulkRun, channel: str | None) -> bool:
    """Start the progress message in `channel`, else the firm's notices channel."""
    web = slack_client.for_firm(run.firm_id)
    if web is None:
        return False
    for where in (channel, Firm.get_by_id(run.firm_id).notify_channel):
        if not where:
            continue
        try:
            reply = web.chat_postMessage(channel=where, **bulk_commands.view(run.id))
        except SlackApiError as problem:
            log.info("bulk %s: can't post progress in %s (%s)", run.id, where,
                     problem.response.get("error"))
            continue
        bulk_runs.shown_at(run.id, reply["channel"], reply["ts"])
        return True
    return False


def report(run_id: int, *, force: bool = False) -> None:
    """Update the run's progress message (if it has one, and if it is time)."""
    if settings().slack_mode == "off" or not _due(run_id, force):
        return
    run = BulkRun.get_or_none(BulkRun.id == run_id)
    web = slack_client.for_firm(run.firm_id) if run is not None and run.slack_ts else None
    if web is None:
        return
    try:
        web.chat_update(channel=run.slack_channel, ts=run.slack_ts, **bulk_commands.view(run_id))
    except SlackApiError as problem:
        log.warning("bulk %s: progress not updated (%s)", run_id, problem.response.get("error"))


def _due(run_id: int, force: bool) -> bool:
    now = time.monotonic()
    with _lock:
        if not force and now - _last.get(run_id, 0.0) < EVERY:
            return False
        _last[run_id] = now
    return True

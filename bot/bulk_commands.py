"""`/ledgersync invite-all` and `/ledgersync bulk`, and the bulk buttons: parse,
check, call core.invitations.bulk_sending, pick a view. No Slack I/O here (that is bot.progress)."""

from __future__ import annotations

import json
import re

from bot.ids import record_id
from bot.views import OpenModal
from core.firms.access import Actor
from core.invitations import bulk_plan, bulk_runs, bulk_sending
from core.platform.config import settings
from core.platform.errors import InvalidInput, Refused
from core.records import BulkRun

from . import bulk_views

SELECTION_WORDS = {"not-invited": "not_invited", "not_invited": "not_invited",
                   "new": "not_invited", "uninvited": "not_invited", "expired": "expired",
                   "reconnect": "needs_reconnect", "restore": "needs_reconnect",
                   "broken": "needs_reconnect", "list": "list"}
USAGE = "`/ledgersync invite-all [not-invited | expired | reconnect | list] [sms | email]`"


def invite_all(command, actor: Actor, meta: dict):
    actor.require("invite")
    words = [w.lower() for w in command.words]
    if any(w not in SELECTION_WORDS for w in words) or len(set(words)) > 1:
        raise InvalidInput(f"Invite whom? {USAGE}")
    selection = SELECTION_WORDS[words[0]] if words else "not_invited"
    if selection == "list":
        metadata = json.dumps({"channel": command.channel, **meta})
        return OpenModal(bulk_views.list_modal(metadata))
    plan = bulk_plan.prepare(actor.firm, selection, channel=command.channel, by=actor.staff)
    return bulk_views.confirm(plan, settings().sms_rate)


def invite_list(names: str, channel: str | None, actor: Actor) -> dict:
    actor.require("invite")
    plan = bulk_plan.prepare(actor.firm, "list", names=names, channel=channel, by=actor.staff)
    return bulk_views.confirm(plan, settings().sms_rate)


def show(command, actor: Actor, meta: dict) -> dict:
    """`/ledgersync bulk [run]`: a run's progress (the latest when none is named)."""
    actor.require("status")
    firm = actor.firm_for(command.firm)
    if command.words:
        number = command.words[0].lstrip("#")
        if not re.fullmatch(r"[0-9]{1,18}", number):
            raise InvalidInput("`/ledgersync bulk [run number]`")
        run = bulk_runs.get(firm, int(number))
    else:
        run = bulk_runs.latest(firm, started=True)
        if run is None:
            raise Refused(f"No bulk invites yet. Start one: {USAGE}")
    return view(run.id)


def view(run_id: int) -> dict:
    return bulk_views.progress(bulk_runs.progress(run_id), bulk_runs.failures(run_id))


def run_of(actor: Actor, value) -> BulkRun:
    """The run a button names, only within the actor's firm, only for who may invite."""
    actor.require("invite")
    return bulk_runs.get(actor.firm, record_id(value))


def confirmed(actor: Actor, value) -> BulkRun:
    run = run_of(actor, value)
    if not bulk_sending.confirm(run.id):
        raise Refused(f"Bulk invite #{run.id} was already {_state(run.refreshed())}.")
    return run


def canceled(actor: Actor, value) -> BulkRun:
    run = run_of(actor, value)
    bulk_sending.cancel(run.id, actor=actor.label)
    return run


def retried(actor: Actor, value) -> BulkRun:
    run = run_of(actor, value)
    if not bulk_sending.retry_failed(run.id):
        raise Refused("Nothing failed in that run, so there is nothing to retry.")
    return run


def _state(run: BulkRun) -> str:
    return {"running": "started", "done": "finished", "canceled": "canceled"}.get(
        run.status, run.status)

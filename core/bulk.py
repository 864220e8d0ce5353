"""Inviting many clients at once: choose who, confirm, send at the sender's pace.

A run is a record: `prepare` picks the clients and says, before anything goes
out, how many get an SMS or an email, who is skipped and why, and how long it
will take; `confirm` starts it (once, however often it is clicked); workers then
`send_next` item by item, each obeying every rule a single invite obeys. Each item
is claimed with a conditional update, and its invite is written in the same
transaction, so a double click, a restarted worker or a flushed Redis never texts
a client twice.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from peewee import fn

from . import clients, clock, deliveries, events, invites, optouts, outbound
from .config import settings
from .db import database
from .errors import Ambiguous, LedgerSyncError, NotFound, Refused
from .models import BankConnection, BulkItem, BulkRun, Client, Firm, Invite, Staff
from .quiet_hours import next_allowed, zone_for

SELECTIONS = {"not_invited": "every client not yet invited",
              "expired": "every client whose invite expired",
              "needs_reconnect": "every client with a connection that needs restoring",
              "list": "the clients listed"}


@dataclass
class Plan:
    run: BulkRun
    sms: int = 0
    email: int = 0
    skipped: list[BulkItem] = field(default_factory=list)

    @property
    def eta_seconds(self) -> float:
        config = settings()
        return max(self.sms / config.sms_rate, self.email / config.email_rate)


# --- choosing who ---------------------------------------------------------------------


def prepare(firm: Firm, selection: str, *, names: str = "", channel: str | None = None,
            by: Staff | None = None) -> Plan:
    if selection not in SELECTIONS:
        raise Refused(f"Choose {', '.join(SELECTIONS)}")
    purpose = "reconnect" if selection == "needs_reconnect" else "connect"
    with database.atomic():
        run = BulkRun.create(firm=firm, started_by=by, selection=selection, channel=channel,
                             purpose=purpose)
        plan = Plan(run)
        for label, client, problem in _chosen(firm, selection, names):
            _plan_item(plan, label, client, problem)
    return plan


def _chosen(firm: Firm, selection: str, names: str):
    if selection == "list":
        yield from _listed(firm, names)
        return
    rows = Client.select().where(Client.firm == firm).order_by(Client.name_key)
    if selection == "not_invited":
        rows = rows.where(~Client.id.in_(Invite.select(Invite.client).where(Invite.firm == firm)))
    elif selection == "needs_reconnect":
        broken = BankConnection.select(BankConnection.client).where(
            BankConnection.status == "needs_reconnect")
        rows = rows.where(Client.id.in_(broken))
    for client in rows:
        if selection == "expired" and _latest_state(client) != "expired":
            continue
        yield client.name, client, None


def _listed(firm: Firm, names: str):
    seen = set()
    for line in re.split(r"[\n;]", names or ""):
        label = line.split(",")[0].strip()
        if not label or label.lower() == "name" or label.lower() in seen:
            continue
        seen.add(label.lower())
        try:
            yield label, clients.find(firm, label), None
        except Ambiguous as many:
            yield label, None, f"ambiguous name ({len(many.candidates)} clients match)"
        except (NotFound, LedgerSyncError):
            yield label, None, "unknown name"


def _latest_state(client: Client) -> str | None:
    latest = invites.latest(client)
    return latest.status(clock.now()) if latest else None


def _plan_item(plan: Plan, label: str, client: Client | None, problem: str | None) -> None:
    channel = None
    if client is not None and problem is None:
        channel = plan.run.channel or ("sms" if client.phone else "email")
        problem = why_not(client, channel, plan.run.purpose)
    if client is not None and BulkItem.select().where(BulkItem.run == plan.run,
                                                      BulkItem.client == client).exists():
        return  # listed twice
    item = BulkItem.create(run=plan.run, client=client, label=label[:200], channel=channel,
                           outcome="skipped" if problem else "queued", reason=problem)
    if problem:
        plan.skipped.append(item)
    elif channel == "sms":
        plan.sms += 1
    else:
        plan.email += 1


def why_not(client: Client, channel: str, purpose: str, retrying: bool = False) -> str | None:
    """The reason this client gets nothing now, or None."""
    if not client.phone and not client.email:
        return "no mobile number or email address"
    if channel == "sms" and not client.phone:
        return "no mobile number"
    if channel == "email" and not client.email:
        return "no email address"
    if channel == "sms" and client.phone_problem:
        return f"number can't get texts ({client.phone_problem})"
    if optouts.is_opted_out(client.phone if channel == "sms" else client.email):
        return "opted out"
    if purpose == "connect" and invites.has_account(client):
        return "already accepted"
    if not retrying and invites.open_invite(client) is not None \
            and _latest_state(client) == "pending":
        return "a valid invite is still pending"
    return None


# --- running ----------------------------------------------------------------------------


def confirm(run_id: int) -> bool:
    """Start the run; True for exactly one of any number of clicks."""
    started = (BulkRun.update(status="running", started_at=clock.now())
               .where(BulkRun.id == run_id, BulkRun.status == "confirming").execute())
    if started:
        run = BulkRun.get_by_id(run_id)
        events.record("bulk.started", firm=run.firm_id, run=run_id,
                      actor=events.actor_of(run.started_by))
    return bool(started)


def cancel(run_id: int, actor: str = "system") -> int:
    """What has not gone out is not sent; what went out stays recorded."""
    with database.atomic():
        BulkRun.update(status="canceled", canceled_at=clock.now()).where(
            BulkRun.id == run_id, BulkRun.status.in_(["confirming", "running"])).execute()
        stopped = (BulkItem.update(outcome="canceled", reason="canceled", updated_at=clock.now())
                   .where(BulkItem.run == run_id, BulkItem.outcome.in_(["queued", "waiting"]))
                   .execute())
    events.record("bulk.canceled", firm=BulkRun.get_by_id(run_id).firm_id, actor=actor,
                  run=run_id, items=stopped)
    return stopped


def retry_failed(run_id: int) -> int:
    with database.atomic():
        again = (BulkItem.update(outcome="queued", reason=None, updated_at=clock.now())
                 .where(BulkItem.run == run_id, BulkItem.outcome == "failed").execute())
        if again:
            BulkRun.update(status="running", finished_at=None).where(BulkRun.id == run_id).execute()
    return again


@dataclass(frozen=True)
class Step:
    result: str  # sent | failed | skipped | waiting | idle | stopped
    item: BulkItem | None = None
    until: datetime | None = None


def send_next(run_id: int, wait_turn=None) -> Step:
    """Send the run's next due item. `wait_turn(channel)` waits for the sender's pace."""
    run = BulkRun.get_or_none(BulkRun.id == run_id)
    if run is None or run.status != "running":
        return Step("stopped")
    now = clock.now()
    item = _claim_next(run_id, now)
    if item is None:
        return _idle(run, now)
    client = item.client
    retrying = item.invite_id is not None  # "Retry failed": its first text never arrived
    problem = (why_not(client, item.channel, run.purpose, retrying) if client
               else "client deleted")
    if problem:
        return _settle(item, "skipped", problem)
    if item.channel == "sms":
        allowed = next_allowed(now, zone_for(client))
        if allowed > now:
            _set(item, "waiting", "quiet hours: waits for their morning", not_before=allowed)
            return Step("waiting", item, allowed)
    return _send(run, item, wait_turn)


def _claim_next(run_id: int, now: datetime) -> BulkItem | None:
    for _ in range(5):
        candidate = (BulkItem.select().where(
            BulkItem.run == run_id,
            (BulkItem.outcome == "queued")
            | ((BulkItem.outcome == "waiting") & (BulkItem.not_before <= now)))
            .order_by(BulkItem.id).first())
        if candidate is None:
            return None
        won = (BulkItem.update(outcome="sending", updated_at=now)
               .where(BulkItem.id == candidate.id, BulkItem.outcome == candidate.outcome)
               .execute())
        if won:
            return candidate
    return None


def _send(run: BulkRun, item: BulkItem, wait_turn=None) -> Step:
    held: list[int] = []
    try:
        with outbound.held(held), database.atomic():
            if item.invite_id is not None and invites.open_invite(item.client) is not None:
                sent = invites.resend(item.client, item.channel, purpose=run.purpose,
                                      by=run.started_by, cooldown=False)
            else:
                sent = invites.send(item.client, item.channel, purpose=run.purpose,
                                    by=run.started_by)
            _set(item, "sent", None, invite=sent.invite)
    except LedgerSyncError as problem:
        return _settle(item, "skipped", str(problem))
    deliveries.deliver_now(held, wait_turn)  # the pace is taken right before the send
    message = sent.message.refreshed()
    if message.status in {"failed", "canceled"}:
        return _settle(item, "failed", message.error_message or "not delivered")
    return Step("sent", item)


def _settle(item: BulkItem, outcome: str, reason: str | None) -> Step:
    _set(item, outcome, reason)
    return Step(outcome, item)


def _set(item: BulkItem, outcome: str, reason: str | None, **extra) -> None:
    BulkItem.update(outcome=outcome, reason=(reason or "")[:300] or None,
                    updated_at=clock.now(), **extra).where(BulkItem.id == item.id).execute()


def _idle(run: BulkRun, now: datetime) -> Step:
    waiting = (BulkItem.select(BulkItem.not_before)
               .where(BulkItem.run == run.id, BulkItem.outcome.in_(["waiting", "sending"]))
               .order_by(BulkItem.not_before).first())
    if waiting is None:
        done = (BulkRun.update(status="done", finished_at=now)
                .where(BulkRun.id == run.id, BulkRun.status == "running").execute())
        if done:
            events.record("bulk.finished", firm=run.firm_id, run=run.id)
        return Step("idle")
    return Step("idle", until=waiting.not_before)


# --- recovery and the runner ------------------------------------------------------------

_runner = None


def set_runner(runner) -> None:
    """How a run is worked on: the jobs layer enqueues workers; None runs here."""
    global _runner
    _runner = runner


_progress_hook = None


def on_progress(hook) -> None:
    """Who shows a run's progress as it goes (`hook(run_id, final)`: the Slack
    message, updated in place); None: nobody."""
    global _progress_hook
    _progress_hook = hook


def report_progress(run_id: int, final: bool = False) -> None:
    if _progress_hook is not None:
        _progress_hook(run_id, final)


def start(run_id: int) -> bool:
    """Confirm and hand the run to the workers."""
    started = confirm(run_id)
    if started:
        kick(run_id)
    return started


def kick(run_id: int) -> None:
    if _runner is not None:
        _runner(run_id)
    else:
        while send_next(run_id).result not in {"idle", "stopped"}:
            pass


def recover(before: datetime) -> list[int]:
    """Items claimed by a worker that died before sending go back in the queue;
    returns the running runs with work due, for the sweep to hand out again."""
    # An item becomes `sent` in the transaction that writes its invite, so one still
    # `sending` sent nothing.
    BulkItem.update(outcome="queued").where(
        BulkItem.outcome == "sending", BulkItem.updated_at <= before).execute()
    due = (BulkItem.select(BulkItem.run).join(BulkRun)
           .where(BulkRun.status == "running", BulkItem.updated_at <= before,
                  (BulkItem.outcome == "queued")
                  | ((BulkItem.outcome == "waiting") & (BulkItem.not_before <= clock.now())))
           .distinct())
    return [row.run_id for row in due]


# --- reading ------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    run: BulkRun
    counts: Counter
    total: int

    @property
    def left(self) -> int:
        return self.counts["queued"] + self.counts["sending"] + self.counts["waiting"]

    @property
    def eta_seconds(self) -> float:
        config = settings()
        return self.left / (config.sms_rate if self.run.channel != "email" else config.email_rate)


def progress(run_id: int) -> Progress:
    run = BulkRun.get_by_id(run_id)
    rows = (BulkItem.select(BulkItem.outcome, fn.COUNT(BulkItem.id).alias("n"))
            .where(BulkItem.run == run).group_by(BulkItem.outcome))
    counts = Counter({row.outcome: row.n for row in rows})
    return Progress(run, counts, sum(counts.values()))


def failures(run_id: int, outcome: str = "failed") -> list[BulkItem]:
    return list(BulkItem.select().where(BulkItem.run == run_id, BulkItem.outcome == outcome)
                .order_by(BulkItem.id))


def latest(firm: Firm, *, started: bool = False) -> BulkRun | None:
    """The firm's newest run (`started`: one confirmed, not just planned)."""
    runs = BulkRun.select().where(BulkRun.firm == firm)
    if started:
        runs = runs.where(BulkRun.status != "confirming")
    return runs.order_by(BulkRun.id.desc()).first()


def recent(firm: Firm, limit: int = 10) -> list[BulkRun]:
    return list(BulkRun.select().where(BulkRun.firm == firm).order_by(BulkRun.id.desc())
                .limit(max(1, limit)))


def shown_at(run_id: int, channel: str, ts: str) -> None:
    """Where the run's progress message is (so it can be updated in place)."""
    BulkRun.update(slack_channel=channel, slack_ts=ts).where(BulkRun.id == run_id).execute()


def get(firm: Firm, run_id: int) -> BulkRun:
    run = BulkRun.get_or_none(BulkRun.id == run_id, BulkRun.firm == firm)
    if run is None:
        raise NotFound("No such bulk run")
    return run


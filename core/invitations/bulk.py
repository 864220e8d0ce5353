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

import functools
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from peewee import JOIN, fn

from core import ports
from core.messaging import deliveries, outbound
from core.messaging.quiet_hours import next_allowed, zone_for
from core.platform import clock, names
from core.platform.config import settings
from core.platform.db import Param, Prepared, database, is_sqlite
from core.platform.errors import Ambiguous, LedgerSyncError, NotFound, Refused
from core.records import (
    OPEN_INVITE,
    BankConnection,
    BulkItem,
    BulkRun,
    Client,
    ClientAccount,
    Event,
    Firm,
    Invite,
    Message,
    OptOut,
    Staff,
    events,
)

from . import clients, invites

log = logging.getLogger(__name__)
# The reason an item is skipped: someone who opened a link sent to this address said it
# isn't the client's (staff check it, then change it or send anyway: `invites.unchecked`).
UNCHECKED = "address to check: someone said a link sent there wasn't theirs"
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
    """Set-based: the clients, and what decides whether each gets an invite (opt-outs,
    accounts, open invites), are read in a handful of queries whatever their number,
    and the items are written in batches — the same reasons as `why_not` gives."""
    if selection not in SELECTIONS:
        raise Refused(f"Choose {', '.join(SELECTIONS)}")
    purpose = "reconnect" if selection == "needs_reconnect" else "connect"
    with database.atomic():
        run = BulkRun.create(firm=firm, started_by=by, selection=selection, channel=channel,
                             purpose=purpose)
        plan = Plan(run)
        rows = _plan_rows(plan, list(_chosen(firm, selection, names)), _Facts.of(firm))
        for start in range(0, len(rows), BATCH):
            BulkItem.insert_many(rows[start:start + BATCH]).execute()
        plan.skipped = list(BulkItem.select().where(BulkItem.run == run,
                                                    BulkItem.outcome == "skipped")
                            .order_by(BulkItem.id))
    return plan


BATCH = 500  # items written per INSERT


@dataclass
class _Facts:
    """What `why_not` asks of the database, for all of a firm's clients at once."""

    opted_out: set[str]
    accepted: set[int]
    pending: set[int]  # clients with a valid invite still open
    disowned: set[int]  # clients one of whose links someone said wasn't theirs

    @classmethod
    def of(cls, firm: Firm) -> _Facts:
        now = clock.now()
        theirs = Client.select(Client.id).where(Client.firm == firm)
        addresses = (Client.select(Client.phone).where(Client.firm == firm)
                     | Client.select(Client.email).where(Client.firm == firm))
        opted = OptOut.select(OptOut.address).where(OptOut.opted_out == True,  # noqa: E712
                                                    OptOut.address.in_(addresses))
        accounts = ClientAccount.select(ClientAccount.client).where(
            ClientAccount.client.in_(theirs))
        open_ = Invite.select(Invite.client).where(
            Invite.firm == firm, OPEN_INVITE, Invite.expired_at.is_null(),
            Invite.expires_at > now)
        said = Event.select(Event.client).where(Event.firm == firm,
                                               Event.kind == "invite.disowned")
        return cls({a for (a,) in opted.tuples()}, {c for (c,) in accounts.tuples()},
                   {c for (c,) in open_.tuples()}, {c for (c,) in said.tuples()})

    def why_not(self, client: Client, channel: str, purpose: str) -> str | None:
        """As `bulk.why_not`, from these facts."""
        problem = _contact_problem(client, channel)
        if problem:
            return problem
        if (client.phone if channel == "sms" else client.email) in self.opted_out:
            return "opted out"
        if purpose == "connect" and client.id in self.accepted:
            return "already accepted"
        if client.id in self.pending:
            return "a valid invite is still pending"
        if client.id in self.disowned and invites.unchecked(client, channel):
            return UNCHECKED
        return None


def _plan_rows(plan: Plan, chosen, facts: _Facts) -> list[dict]:
    rows, seen = [], set()
    for label, client, problem in chosen:
        if client is not None and client.id in seen:
            continue  # listed twice
        channel = None
        if client is not None:
            seen.add(client.id)
            if problem is None:
                channel = plan.run.channel or ("sms" if client.phone else "email")
                problem = facts.why_not(client, channel, plan.run.purpose)
        rows.append({"run": plan.run.id, "client": client.id if client else None,
                     "label": label[:200], "channel": channel,
                     "outcome": "skipped" if problem else "queued", "reason": problem,
                     "updated_at": clock.now()})
        if not problem and channel == "sms":
            plan.sms += 1
        elif not problem:
            plan.email += 1
    return rows


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
    expired = _expired_clients(firm) if selection == "expired" else None
    for client in rows:
        if expired is None or client.id in expired:
            yield client.name, client, None


def _expired_clients(firm: Firm) -> set[int]:
    """Clients whose latest invite has expired (one query for the firm)."""
    latest: dict[int, Invite] = {}
    for invite in Invite.select().where(Invite.firm == firm).order_by(Invite.id):
        latest[invite.client_id] = invite
    now = clock.now()
    return {client for client, invite in latest.items() if invite.status(now) == "expired"}


def _listed(firm: Firm, names: str):
    seen = set()
    by_key: dict[str, list[Client]] = {}
    for client in Client.select().where(Client.firm == firm):
        by_key.setdefault(client.name_key, []).append(client)
    for line in re.split(r"[\n;]", names or ""):
        label = line.split(",")[0].strip()
        if not label or label.lower() == "name" or label.lower() in seen:
            continue
        seen.add(label.lower())
        yield _resolve(firm, label, by_key)


def _resolve(firm: Firm, label: str, by_key: dict[str, list[Client]]):
    """A listed name as `clients.find` resolves it: an exact name from the firm's
    clients read once; anything else (phone, email, part of a name) by `find`."""
    exact = by_key.get(names.name_key(label)) if _plain_name(label) else None
    try:
        if exact and len(exact) == 1:
            return label, exact[0], None
        if exact:
            raise Ambiguous("", exact)
        return label, clients.find(firm, label), None
    except Ambiguous as many:
        return label, None, f"ambiguous name ({len(many.candidates)} clients match)"
    except (NotFound, LedgerSyncError):
        return label, None, "unknown name"


def _plain_name(label: str) -> bool:
    """Not an email or a phone number (as `clients.find` tells them apart)."""
    return "@" not in label and not (sum(c.isdigit() for c in label) >= 7
                                      and not re.search(r"[a-zA-Z]{2}", label))


def _contact_problem(client: Client, channel: str) -> str | None:
    if not client.phone and not client.email:
        return "no mobile number or email address"
    if channel == "sms" and not client.phone:
        return "no mobile number"
    if channel == "email" and not client.email:
        return "no email address"
    if channel == "sms" and client.phone_problem:
        return f"number can't get texts ({client.phone_problem})"
    return None


def why_not(client: Client, channel: str, purpose: str,
            standing: tuple[bool, bool, bool]) -> str | None:
    """The reason this client gets nothing now, or None; `standing`: opted out?
    accepted? a valid invite still pending? (`_standing`, read with the claimed item)."""
    problem = _contact_problem(client, channel)
    if problem:
        return problem
    opted, accepted, pending = standing
    if opted:
        return "opted out"
    if purpose == "connect" and accepted:
        return "already accepted"
    if pending:
        return "a valid invite is still pending"
    return None


def _standing(item: BulkItem, retrying: bool) -> tuple[bool, bool, bool]:
    """What `_CLAIMED` read with the item: opted out (the channel's address)? accepted?
    a valid invite still pending (not asked when retrying)?"""
    opted = item.opted_sms if item.channel == "sms" else item.opted_email
    return bool(opted), bool(item.accepted), bool(item.pending) and not retrying


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


def send_next(run_id: int, wait_turn=None, run: BulkRun | None = None) -> Step:
    """Send the run's next due item. `wait_turn(channel)` waits for the sender's pace.
    (`run`: the run as read at the start of a worker's slice — a cancel that lands
    since is still obeyed: it takes the items, so none can be claimed.)"""
    run = run or BulkRun.get_or_none(BulkRun.id == run_id)
    if run is None or run.status != "running":
        return Step("stopped")
    now = clock.now()
    item = _claim_next(run_id, now)
    if item is None:
        return _idle(run, now)
    client = item.client
    retrying = item.invite_id is not None  # "Retry failed": its first text never arrived
    problem = (why_not(client, item.channel, run.purpose, _standing(item, retrying)) if client
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
    """Claim the run's next due item, in order, with one conditional update: it is
    this caller's alone (on PostgreSQL a claimer skips the row another is claiming at
    that moment, `SKIP LOCKED`; on SQLite writers take turns). None when none is due."""
    claimed = _claim(is_sqlite()).rows(run=run_id, now=now)
    return _CLAIMED.first(id=claimed[0].id, now=now) if claimed else None


def _due(now):
    return (BulkItem.outcome == "queued") | ((BulkItem.outcome == "waiting")
                                             & (BulkItem.not_before <= now))


# The statements every bulk text runs (see db.Prepared).
@functools.cache
def _claim(sqlite: bool) -> Prepared:
    first_due = (BulkItem.select(BulkItem.id).where(BulkItem.run == Param("run"),
                                                    _due(Param("now")))
                 .order_by(BulkItem.id).limit(1))
    if not sqlite:
        first_due = first_due.for_update("FOR UPDATE SKIP LOCKED")
    return Prepared(BulkItem.update(outcome="sending",
                                    updated_at=Param("now", BulkItem.updated_at))
                    .where(BulkItem.id == first_due).returning(BulkItem.id))


def _claimed() -> Prepared:
    """The claimed item with its client and firm, and in the same query whatever its
    text depends on: opt-outs, an account, open invites still valid or past expiry."""
    now = Param("now")
    open_invites = Invite.select().where(Invite.client == Client.id, OPEN_INVITE,
                                         Invite.expired_at.is_null())
    return Prepared(
        BulkItem.select(BulkItem, Client, Firm,
                        _opted(Client.phone).alias("opted_sms"),
                        _opted(Client.email).alias("opted_email"),
                        fn.EXISTS(ClientAccount.select().where(ClientAccount.client == Client.id))
                        .alias("accepted"),
                        fn.EXISTS(open_invites.where(Invite.expires_at > now)).alias("pending"),
                        fn.EXISTS(open_invites.where(Invite.expires_at <= now)).alias("overdue"))
        .join(Client, JOIN.LEFT_OUTER).join(Firm, JOIN.LEFT_OUTER)
        .where(BulkItem.id == Param("id")).limit(1))


def _opted(address):
    return fn.EXISTS(OptOut.select().where(OptOut.address == address,
                                           OptOut.opted_out == True))  # noqa: E712


_CLAIMED = _claimed()
_SENT = Prepared(BulkItem.update(outcome="sent", reason=None,
                                 updated_at=Param("now", BulkItem.updated_at),
                                 invite=Param("invite", BulkItem.invite))
                 .where(BulkItem.id == Param("id")))


def _send(run: BulkRun, item: BulkItem, wait_turn=None) -> Step:
    held: list[int] = []
    try:
        with outbound.held(held), database.atomic():
            if item.invite_id is not None and invites.open_invite(item.client) is not None:
                sent = invites.resend(item.client, item.channel, purpose=run.purpose,
                                      by=run.started_by, cooldown=False)
            elif invites.unchecked(item.client, item.channel):
                return _settle(item, "skipped", UNCHECKED)
            else:  # checked just now (`why_not`), and written in this transaction
                sent = invites.send_checked(item.client, item.channel, purpose=run.purpose,
                                            by=run.started_by, overdue=bool(item.overdue))
            _SENT.run(id=item.id, invite=sent.invite.id, now=clock.now())
            mine = sent.message if deliveries.claim(sent.message) else None
    except LedgerSyncError as problem:
        return _settle(item, "skipped", str(problem))
    message = _deliver(held, wait_turn, mine) or sent.message
    if message.status in {"failed", "canceled"}:
        return _settle(item, "failed", message.error_message or "not delivered")
    return Step("sent", item)


def _deliver(held: list[int], wait_turn, mine: Message | None) -> Message | None:
    """Send what the item's invite wrote, at the sender's pace (taken right before the
    provider is called) — its text claimed already (`mine`), as it was written; the
    invite's message as it ends up (still pending when the provider asked to try
    again later: the sweep sends it then)."""
    delivered = None
    for message_id in held:
        try:
            message = (deliveries.send_claimed(mine, wait_turn)
                       if mine is not None and message_id == mine.id
                       else deliveries.deliver(message_id, wait_turn))
        except deliveries.TransientFailure:
            log.warning("message %s: delivery will be retried", message_id)
            continue
        if message is not None and message.kind == "invite":
            delivered = message
    return delivered


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


def report_progress(run_id: int, final: bool = False) -> None:
    """The run's progress, to whoever shows it (the `bulk_progress` port)."""
    show = ports.current().bulk_progress
    if show is not None:
        show(run_id, final)


def start(run_id: int) -> bool:
    """Confirm and hand the run to the workers."""
    started = confirm(run_id)
    if started:
        kick(run_id)
    return started


def kick(run_id: int) -> None:
    """Work on the run: the `bulk_runner` port (bulk jobs), or here and now."""
    runner = ports.current().bulk_runner
    if runner is not None:
        runner(run_id)
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


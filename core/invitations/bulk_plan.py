"""Inviting many clients at once, before anything goes out: who (a selection or a
list of names), by which channel, who is skipped and why, and how long it will take.

A run is a record: `prepare` writes it with its items, `bulk_sending.start` starts it
once staff confirm, and each item then obeys every rule a single invite obeys
(`why_not`, asked again when the item's turn comes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from core.platform import clock, names
from core.platform.config import settings
from core.platform.db import database
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
    OptOut,
    Staff,
)

from . import clients, invites

# The reason an item is skipped: someone who opened a link sent to this address said it
# isn't the client's (staff check it, then change it or send anyway: `invites.unchecked`).
UNCHECKED = "address to check: someone said a link sent there wasn't theirs"
SELECTIONS = {"not_invited": "every client not yet invited",
              "expired": "every client whose invite expired",
              "opened_not_accepted": "every client who opened their link but didn't accept "
                                     "before it expired",
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


def prepare(firm: Firm, selection: str, *, names: str = "", channel: str | None = None,
            by: Staff | None = None, among=None) -> Plan:
    """Set-based: the clients, and what decides whether each gets an invite (opt-outs,
    accounts, open invites), are read in a handful of queries whatever their number,
    and the items are written in batches — the same reasons as `why_not` gives.
    `among`: a subquery of client ids the selection is narrowed to (the funnel's
    follow-ups: the clients of one stall in a period)."""
    if selection not in SELECTIONS:
        raise Refused(f"Choose {', '.join(SELECTIONS)}")
    purpose = "reconnect" if selection == "needs_reconnect" else "connect"
    with database.atomic():
        run = BulkRun.create(firm=firm, started_by=by, selection=selection, channel=channel,
                             purpose=purpose)
        plan = Plan(run)
        rows = _plan_rows(plan, list(_chosen(firm, selection, names, among)),
                          _Facts.of(firm))
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


def _chosen(firm: Firm, selection: str, names: str, among=None):
    if selection == "list":
        yield from _listed(firm, names)
        return
    rows = Client.select().where(Client.firm == firm).order_by(Client.name_key)
    if among is not None:
        rows = rows.where(Client.id.in_(among))
    if selection == "not_invited":
        rows = rows.where(~Client.id.in_(Invite.select(Invite.client).where(Invite.firm == firm)))
    elif selection == "needs_reconnect":
        broken = BankConnection.select(BankConnection.client).where(
            BankConnection.status == "needs_reconnect")
        rows = rows.where(Client.id.in_(broken))
    expired = (_expired_clients(firm, among, opened=selection == "opened_not_accepted")
               if selection in ("expired", "opened_not_accepted") else None)
    for client in rows:
        if expired is None or client.id in expired:
            yield client.name, client, None


def _expired_clients(firm: Firm, among=None, opened: bool = False) -> set[int]:
    """Clients (of `among`) whose latest invite has expired (`opened`: after they
    opened it) — one query for the firm."""
    latest: dict[int, Invite] = {}
    theirs = Invite.select().where(Invite.firm == firm)
    if among is not None:
        theirs = theirs.where(Invite.client.in_(among))
    for invite in theirs.order_by(Invite.id):
        latest[invite.client_id] = invite
    now = clock.now()
    return {client for client, invite in latest.items() if invite.status(now) == "expired"
            and (not opened or invite.first_clicked_at is not None)}


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

"""A client's bank connections: add one, restore one that needs it.

What the limited Client Account can do — and nothing else. Success records an
event, tells the firm, and settles any automatic reminder still due (the client
has acted).
"""

from __future__ import annotations

from dataclasses import dataclass

from . import banks, clock, events, notices, outbound
from .db import database
from .errors import NotFound, Refused
from .models import OPEN_INVITE, BankConnection, Client, Invite


@dataclass(frozen=True)
class Outcome:
    status: str  # connected | needs_code | failed
    message: str = ""
    challenge: str | None = None
    connection: BankConnection | None = None


def for_client(client: Client) -> list[BankConnection]:
    return list(BankConnection.select().where(BankConnection.client == client)
                .order_by(BankConnection.institution_name))


def get(client: Client, connection_id: int) -> BankConnection:
    """Only the client's own connection; another client's id is NotFound."""
    found = BankConnection.get_or_none(BankConnection.id == connection_id,
                                       BankConnection.client == client)
    if found is None:
        raise NotFound("That connection does not exist")
    return found


def add(client: Client, institution_id: str, username: str = "", password: str = "", *,
        challenge: str | None = None, code: str | None = None) -> Outcome:
    institution = banks.institution(institution_id)
    if institution is None:
        raise NotFound("That bank is not on the list")
    result = _link(institution, username, password, challenge, code)
    if result.status != "connected":
        return Outcome(result.status, result.message, result.challenge)
    existing = BankConnection.get_or_none(BankConnection.client == client,
                                          BankConnection.institution_id == institution.id)
    with database.atomic():
        if existing:
            _set_active(existing)
            connection = existing.refreshed()
        else:
            connection = BankConnection.create(client=client, institution_id=institution.id,
                                               institution_name=institution.name)
        notice = _acted(client, connection, "connected")
    outbound.dispatch(notice)
    return Outcome("connected", f"{institution.name} is connected.", connection=connection)


def restore(client: Client, connection_id: int, username: str = "", password: str = "", *,
            challenge: str | None = None, code: str | None = None) -> Outcome:
    connection = get(client, connection_id)
    if connection.status != "needs_reconnect":
        raise Refused(f"{connection.institution_name} does not need restoring")
    institution = banks.institution(connection.institution_id) or banks.Institution(
        connection.institution_id, connection.institution_name)
    result = _link(institution, username, password, challenge, code)
    if result.status != "connected":
        return Outcome(result.status, result.message, result.challenge, connection)
    with database.atomic():
        _set_active(connection)
        notice = _acted(client, connection, "restored")
    outbound.dispatch(notice)
    return Outcome("connected", f"{connection.institution_name} is working again.",
                   connection=connection.refreshed())


def mark_broken(connection: BankConnection, reason: str = "the bank asked to sign in again"):
    """The bank needs the client's login again (the aggregator said so)."""
    changed = (BankConnection.update(status="needs_reconnect", last_error=reason[:300],
                                     updated_at=clock.now())
               .where(BankConnection.id == connection.id,
                      BankConnection.status != "needs_reconnect").execute())
    if changed:
        client = connection.client
        events.record("connection.broken", client=client, bank=connection.institution_name,
                      reason=reason)
        outbound.dispatch(notices.write(
            client.firm_id, "needs_restoring",
            f"{client.name}'s {connection.institution_name} connection needs restoring "
            f"({reason}). Ask them: /ledgersync invite {client.name} reconnect",
            client=client, dedupe_key=f"notice-broken-{connection.id}-{clock.now():%Y%m%d%H%M%S}"))
    return bool(changed)


def _link(institution, username, password, challenge, code) -> banks.LinkResult:
    provider = banks.provider()
    if challenge is not None:
        return provider.submit_code(institution, challenge, code or "")
    return provider.link(institution, username.strip(), password)


def _set_active(connection: BankConnection) -> None:
    BankConnection.update(status="active", last_error=None, updated_at=clock.now()).where(
        BankConnection.id == connection.id).execute()


def _acted(client: Client, connection: BankConnection, what: str):
    now = clock.now()
    events.record(f"connection.{what}", client=client, actor="client",
                  bank=connection.institution_name)
    settled = (Invite.update(reminded_at=now)
               .where(Invite.client == client, OPEN_INVITE, Invite.reminded_at.is_null())
               .execute())
    if settled:
        events.record("reminder.skipped", client=client, reason="the client connected a bank")
    verb = "connected" if what == "connected" else "restored"
    return notices.write(
        client.firm_id, f"bank_{what}", f"{client.name} {verb} {connection.institution_name}.",
        client=client, dedupe_key=f"notice-{what}-{connection.id}-{now:%Y%m%d%H%M%S%f}")

"""A client's bank connections: add one, restore one that needs it — and their
health as the provider reports it (needs restoring, working again, disconnected).

Adding and restoring are what the limited Client Account can do — and nothing else.
Success records an event, tells the firm, settles any automatic reminder still due
(the client has acted), and asks for the connection's accounts and transactions
(`sync_soon`: on a worker when there is a queue — the `sync_runner` port — else now). The
provider's access token is stored sealed (`tokens.seal`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from core import ports
from core.messaging import notices, outbound
from core.platform import clock, tokens
from core.platform.db import Param, Prepared, database
from core.platform.errors import NotFound, Refused
from core.records import OPEN_INVITE, BankConnection, Client, Invite, events

from . import bank_sync, banks

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Outcome:
    status: str  # connected | needs_code | failed
    message: str = ""
    challenge: str | None = None
    connection: BankConnection | None = None


_OF_CLIENT = Prepared(BankConnection.select().where(BankConnection.client == Param("client"))
                     .order_by(BankConnection.institution_name))


def for_client(client: Client) -> list[BankConnection]:
    return _OF_CLIENT.rows(client=client.id)


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
        _refused(client, institution.name, result)
        return Outcome(result.status, result.message, result.challenge)
    connection = attach(client, institution, result.item)
    return Outcome("connected", f"{institution.name} is connected.", connection=connection)


def attach(client: Client, institution: banks.Institution, item: banks.Item | None,
           accounts: list[banks.Account] | None = None) -> BankConnection:
    """A linked login becomes the client's connection to that bank (a new one, or the
    one they had, working again with the new login), its accounts kept, the firm told."""
    existing = BankConnection.get_or_none(BankConnection.client == client,
                                          BankConnection.institution_id == institution.id)
    with database.atomic():
        if existing:
            _set_active(existing, item)
            connection = existing.refreshed()
        else:
            connection = BankConnection.create(client=client, institution_id=institution.id,
                                               institution_name=institution.name,
                                               **_item_fields(item))
        if accounts:
            bank_sync.keep_accounts(connection, accounts)
        notice = _acted(client, connection, "connected")
    outbound.dispatch(notice)
    sync_soon(connection.id)
    return connection


def restore(client: Client, connection_id: int, username: str = "", password: str = "", *,
            challenge: str | None = None, code: str | None = None) -> Outcome:
    connection = get(client, connection_id)
    if connection.status != "needs_reconnect":
        raise Refused(f"{connection.institution_name} does not need restoring")
    institution = banks.institution(connection.institution_id) or banks.Institution(
        connection.institution_id, connection.institution_name)
    result = _link(institution, username, password, challenge, code)
    if result.status != "connected":
        _refused(client, connection.institution_name, result)
        return Outcome(result.status, result.message, result.challenge, connection)
    restored(connection, item=None if connection.access_sealed else result.item)
    return Outcome("connected", f"{connection.institution_name} is working again.",
                   connection=connection.refreshed())


def restored(connection: BankConnection, *, item: banks.Item | None = None) -> bool:
    """The client logged in again: healthy, the firm told, the reminders settled. True
    for the one caller that changed it."""
    client = connection.client
    with database.atomic():
        changed = _set_active(connection, item, only_if_broken=True)
        if changed:
            notice = _acted(client, connection, "restored")
    if changed:
        outbound.dispatch(notice)
        sync_soon(connection.id)
    return bool(changed)


def repaired(connection: BankConnection) -> bool:
    """The provider says the login works again (fixed elsewhere, e.g. Plaid's
    LOGIN_REPAIRED): healthy, the firm told, and, with nothing left to restore, the
    reconnect invite's reminder stopped. Once, however often it is said."""
    client = connection.client
    with database.atomic():
        changed = _set_active(connection, None, only_if_broken=True)
        if changed:
            notice = _acted(client, connection, "repaired")
            _stop_reconnect_prompts(client)
    if changed:
        outbound.dispatch(notice)
        sync_soon(connection.id)
    return bool(changed)


def mark_broken(connection: BankConnection, reason: str = "the bank asked to sign in again"):
    """The bank needs the client's login again (the aggregator said so). True for the
    one caller that changed it (a webhook delivered twice breaks it once)."""
    now = clock.now()
    changed = (BankConnection.update(status="needs_reconnect", last_error=reason[:300],
                                     updated_at=now, auto_invited_at=None)
               .where(BankConnection.id == connection.id,
                      BankConnection.status == "active").execute())
    if changed:
        client = connection.client
        events.record("connection.broken", client=client, bank=connection.institution_name,
                      reason=reason)
        outbound.dispatch(notices.write(
            client.firm_id, "needs_restoring",
            f"{client.name}'s {connection.institution_name} connection needs restoring "
            f"({reason}). Ask them: /ledgersync invite {client.name} reconnect",
            client=client, dedupe_key=f"notice-broken-{connection.id}-{now:%Y%m%d%H%M%S%f}"))
    return bool(changed)


def mark_disconnected(connection: BankConnection, reason: str) -> bool:
    """The client withdrew the provider's access (or the bank closed it): nothing more
    is read from it; restoring it means adding the bank again."""
    changed = (BankConnection.update(status="disconnected", last_error=reason[:300],
                                     updated_at=clock.now())
               .where(BankConnection.id == connection.id,
                      BankConnection.status != "disconnected").execute())
    if changed:
        client = connection.client
        events.record("connection.disconnected", client=client,
                      bank=connection.institution_name, reason=reason)
        outbound.dispatch(notices.write(
            client.firm_id, "bank_disconnected",
            f"{client.name}'s {connection.institution_name} connection was disconnected "
            f"({reason}). To read it again they add the bank again: "
            f"/ledgersync invite {client.name} reconnect",
            client=client, dedupe_key=f"notice-disconnected-{connection.id}-"
                                      f"{clock.now():%Y%m%d%H%M%S%f}"))
    return bool(changed)


def _refused(client: Client, bank: str, result: banks.LinkResult) -> None:
    """The bank refused the login (not a code asked for): recorded, with its reason."""
    if result.status == "failed":
        events.record("connection.login_failed", client=client, actor="client", bank=bank,
                      reason=(result.message or "").replace("%(bank)s", bank))


def _link(institution, username, password, challenge, code) -> banks.LinkResult:
    if banks.is_hosted():
        raise Refused("This bank connects through its own secure pages; start again from "
                      "your connections")
    provider = banks.provider()
    if challenge is not None:
        return provider.submit_code(institution, challenge, code or "")
    return provider.link(institution, username.strip(), password)


def _item_fields(item: banks.Item | None) -> dict:
    if item is None:
        return {}
    return {"provider": banks.provider_name(), "item_id": item.item_id,
            "access_sealed": tokens.seal(item.access_token), "sync_cursor": None}


def _set_active(connection: BankConnection, item: banks.Item | None, *,
                only_if_broken: bool = False) -> int:
    """Healthy again (with this new login, when given: its data read afresh)."""
    fields = {"status": "active", "last_error": None, "updated_at": clock.now(),
              **_item_fields(item)}
    query = BankConnection.update(**fields).where(BankConnection.id == connection.id)
    if only_if_broken:
        query = query.where(BankConnection.status == "needs_reconnect")
    changed = query.execute()
    if changed and item is not None and connection.item_id != item.item_id:
        bank_sync.forget_data(connection)  # the old login's accounts: the new one's replace them
    return changed


_ACTED = {  # what: (who did it, the firm's notice kind, its words)
    "connected": ("client", "bank_connected", "{client} connected {bank}."),
    "restored": ("client", "bank_restored", "{client} restored {bank}."),
    "repaired": ("system", "bank_restored", "{client}'s {bank} connection works again."),
}


def _acted(client: Client, connection: BankConnection, what: str):
    now = clock.now()
    actor, kind, words = _ACTED[what]
    events.record(f"connection.{what}", client=client, actor=actor,
                  bank=connection.institution_name)
    if actor == "client":
        settled = (Invite.update(reminded_at=now)
                   .where(Invite.client == client, OPEN_INVITE, Invite.reminded_at.is_null())
                   .execute())
        if settled:
            events.record("reminder.skipped", client=client,
                          reason="the client connected a bank")
    text = words.format(client=client.name, bank=connection.institution_name)
    return notices.write(client.firm_id, kind, text, client=client,
                         dedupe_key=f"notice-{what}-{connection.id}-{now:%Y%m%d%H%M%S%f}")


def _stop_reconnect_prompts(client: Client) -> None:
    """Nothing left to restore: no automatic reminder for an open reconnect invite."""
    if BankConnection.select().where(BankConnection.client == client,
                                     BankConnection.status == "needs_reconnect").exists():
        return
    open_reconnect = Invite.select(Invite.id).where(
        Invite.client == client, Invite.purpose == "reconnect", OPEN_INVITE,
        Invite.reminded_at.is_null())
    for invite in open_reconnect:
        stopped = Invite.update(reminded_at=clock.now()).where(
            Invite.id == invite.id, Invite.reminded_at.is_null()).execute()
        if stopped:
            events.record("reminder.skipped", client=client, invite=invite.id,
                          reason="the bank connection works again")


# --- keeping the data in step (core.banking.bank_sync does the work) ------------------------------

def sync_soon(connection_id: int) -> None:
    """Sync this connection's accounts and transactions: on a worker (the `sync_runner`
    port), or now."""
    (ports.current().sync_runner or sync_quietly)(connection_id)


def sync(connection_id: int) -> bank_sync.Report:
    """One sync; a provider that wants the login again marks the connection broken."""
    report = bank_sync.sync(connection_id)
    if report.result == "broken":
        mark_broken(BankConnection.get_by_id(connection_id))
    return report


def sync_quietly(connection_id: int) -> bank_sync.Report | None:
    try:
        return sync(connection_id)
    except banks.ProviderError as problem:  # the daily sweep tries again
        log.warning("sync of connection %s failed: %s", connection_id, problem)
        return None


def sync_all(stale_after: timedelta | None = None) -> int:
    """A sync asked for every working connection (not synced within `stale_after`,
    when given: the daily sweep); how many."""
    ids = bank_sync.readable(None if stale_after is None else clock.now() - stale_after)
    for connection_id in ids:
        sync_soon(connection_id)
    return len(ids)

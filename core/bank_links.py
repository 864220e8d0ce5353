"""Hosted bank links: the client logs in to their bank on the provider's own pages
(Plaid Hosted Link), to add a bank or to restore one (update mode).

`start` asks the provider for a link session and keeps its link token sealed (its
SHA-256 finds the session again). The session ends two ways, whichever comes
first: the client's browser comes back to our completion page, or the provider's
webhook says it finished. Both call `finish`, which one process at a time claims
(a conditional update): it reads the outcome, exchanges each new login's public
token for its access token (once: a public token works once), reads the accounts,
and attaches the connection — or, for a restore, marks it working again. A claim
left by a process that died is taken over after CLAIM_TIMEOUT.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from . import banks, clock, connections, tokens
from .config import settings
from .errors import NotFound, Refused
from .models import BankConnection, BankLinkSession, Client

LIFETIME = timedelta(hours=4)  # as long as the provider's link token lives
CLAIM_TIMEOUT = timedelta(minutes=2)
COMPLETION_PATH = "/i/account/bank/done"


@dataclass(frozen=True)
class Finished:
    status: str  # pending | done | exited | finishing
    message: str = ""
    connections: tuple[BankConnection, ...] = ()


def start(client: Client, connection: BankConnection | None = None) -> str:
    """A link session for the client (to restore `connection`, when given); the
    address of the provider's page to send them to."""
    if not banks.is_hosted():
        raise Refused("This provider takes the bank login on our own page")
    provider = banks.provider()
    access = _restorable(client, connection)
    config = settings()
    link = provider.start_link(banks.LinkRequest(
        client_user_id=client_user_id(client), firm_name=client.firm.name,
        completion_url=config.public_base_url + COMPLETION_PATH,
        webhook_url=config.plaid_webhook_url, access_token=access))
    BankLinkSession.create(
        client=client, connection=connection, purpose="restore" if connection else "connect",
        token_digest=digest(link.token), token_sealed=tokens.seal(link.token),
        expires_at=link.expires_at or clock.now() + LIFETIME)
    return link.url


def _restorable(client: Client, connection: BankConnection | None) -> str | None:
    if connection is None:
        return None
    if connection.client_id != client.id:
        raise NotFound("That connection does not exist")
    if connection.status != "needs_reconnect":
        raise Refused(f"{connection.institution_name} does not need restoring")
    access = connection.access_sealed and tokens.unseal(connection.access_sealed)
    if not access:
        raise Refused(f"{connection.institution_name} can't be restored; add it again")
    return access


def client_user_id(client: Client) -> str:
    """Stable and opaque to the provider: never the client's name, phone or email."""
    return "ls-" + tokens.digest(f"bank-link-user:{client.id}")[:32]


def digest(link_token: str) -> str:
    return hashlib.sha256(link_token.encode()).hexdigest()


def finish_open(client: Client) -> list[Finished]:
    """The client is back on our completion page: every session of theirs still open."""
    rows = BankLinkSession.select(BankLinkSession.id).where(
        BankLinkSession.client == client, BankLinkSession.status.in_(["open", "finishing"]),
        BankLinkSession.expires_at > clock.now()).order_by(BankLinkSession.id)
    return [finish(row.id) for row in rows]


def recently_finished(client: Client, within: timedelta = timedelta(hours=1)) -> list[str]:
    """What the client's sessions that ended lately came to (the provider's webhook may
    have finished one before the client's browser came back)."""
    rows = BankLinkSession.select().where(
        BankLinkSession.client == client, BankLinkSession.status.in_(["done", "exited"]),
        BankLinkSession.finished_at >= clock.now() - within).order_by(BankLinkSession.id)
    return [row.outcome for row in rows if row.outcome]


def finish_by_token(link_token: str) -> Finished | None:
    """The provider's webhook names a session by its link token (None: not ours)."""
    session = BankLinkSession.get_or_none(BankLinkSession.token_digest == digest(link_token))
    return None if session is None else finish(session.id)


def finish(session_id: int) -> Finished:
    if not _claim(session_id):
        session = BankLinkSession.get_by_id(session_id)
        return Finished(session.status, session.outcome or "")
    session = BankLinkSession.get_by_id(session_id)
    try:
        found = _finish(session)
    except Exception:
        _set(session_id, "open")
        raise
    _set(session_id, "open" if found.status == "pending" else found.status, found.message)
    return found


def _claim(session_id: int) -> bool:
    now = clock.now()
    open_ = BankLinkSession.status == "open"
    abandoned = (BankLinkSession.status == "finishing") & (
        BankLinkSession.claimed_at <= now - CLAIM_TIMEOUT)
    return bool(BankLinkSession.update(status="finishing", claimed_at=now).where(
        BankLinkSession.id == session_id, open_ | abandoned).execute())


def _set(session_id: int, status: str, outcome: str = "") -> None:
    finished = clock.now() if status in {"done", "exited"} else None
    BankLinkSession.update(status=status, outcome=outcome[:300] or None,
                           finished_at=finished).where(BankLinkSession.id == session_id).execute()


def _finish(session: BankLinkSession) -> Finished:
    provider = banks.provider()
    token = tokens.unseal(session.token_sealed)
    if token is None:
        return Finished("exited", "This bank link can't be read any more; start again.")
    outcome = provider.link_outcome(token)
    if outcome.status != "success":
        message = outcome.message or ("You left before finishing; nothing was connected."
                                      if outcome.status == "exited" else "")
        return Finished(outcome.status, message)
    if session.purpose == "restore":
        connection = session.connection
        connections.restored(connection)
        return Finished("done", f"{connection.institution_name} is working again.",
                        (connection.refreshed(),))
    added = tuple(_add(provider, session.client, item) for item in outcome.items)
    names = ", ".join(c.institution_name for c in added) or "Nothing"
    return Finished("done", f"{names} {'is' if len(added) == 1 else 'are'} connected.", added)


def _add(provider: banks.BankProvider, client: Client, added: banks.AddedItem):
    item = provider.exchange(added.public_token)
    institution = banks.Institution(
        item.institution_id or added.institution_id or "unknown",
        item.institution_name or added.institution_name or "Your bank")
    return connections.attach(client, institution, item, provider.accounts(item.access_token))

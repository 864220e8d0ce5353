"""Hosted bank links: the client logs in to their bank on the provider's own pages
(Plaid Hosted Link), to add a bank or to restore one (update mode).

`start` asks the provider for a link session, in the client's language, and keeps
its link token sealed (its SHA-256 finds the session again). The session ends two
ways, whichever comes first: the client's browser comes back to our completion page
(`back`), or the provider's webhook says it finished (`finish_by_token`, with what the
webhook says it came to, when it says). Both call `finish`, which one process at a
time claims (a conditional update): it takes the outcome the webhook gave, else asks
the provider, exchanges each new login's public token for its access token (once: a
public token works once), reads the accounts, and attaches the connection — or, for
a restore, marks it working again (no exchange: the item keeps its access token). A
claim left by a process that died is taken over after CLAIM_TIMEOUT.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from core.platform import clock, i18n, tokens
from core.platform.config import settings
from core.platform.errors import NotFound, Refused
from core.platform.i18n import N_
from core.records import BankConnection, BankLinkSession, Client, events

from . import banks, connections

LIFETIME = timedelta(hours=4)  # as long as the provider's link token lives
CLAIM_TIMEOUT = timedelta(minutes=2)
COMPLETION_PATH = "/i/account/bank/done"
TOLD_WITHIN = timedelta(hours=1)  # a session that ended this lately is told on return
SETTLED = ("done", "exited")
# What the client is told of a session that ended without a bank (the catalogue's words;
# a provider's own message, in the client's language, when it gives one).
LEFT = N_("You left before finishing; nothing was connected.")
UNREADABLE = N_("This bank link can't be read any more; start again.")


@dataclass(frozen=True)
class Finished:
    status: str  # pending | done | exited | finishing
    message: str = ""  # done: the banks, by name; exited: why
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
        webhook_url=config.plaid_webhook_url, access_token=access,
        language=i18n.of_client(client)))
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


@dataclass(frozen=True)
class Back:
    """What the completion page tells the client of their latest session: nothing
    (`status` ""), still going (`pending`), `done` (with the banks connected, or
    restored) or `exited` (with why: a catalogue message, or the provider's words)."""

    status: str = ""
    banks: str = ""  # done: the banks, by name ("Chase, Ally Bank")
    restored: bool = False  # done: a restore (the bank works again), not a new bank
    message: str = ""  # exited: why
    pending: bool = False


def back(client: Client) -> Back:
    """The client is back on our completion page. Each session of theirs still open is
    finished if the provider says it ended; then the latest session answers — the one
    started or ended last: ended (here, or by the provider's webhook first), what it came
    to; still open, wait. An older session the client abandoned doesn't hold the page
    up (should it ever end, the webhook finishes it)."""
    now = clock.now()
    _finish_open(client, now)
    latest = _latest(client, now)
    if latest is None:
        return Back()
    if latest.status == "done":
        return Back("done", banks=latest.outcome or "", restored=latest.purpose == "restore")
    if latest.status == "exited":
        return Back("exited", message=latest.outcome or LEFT)
    return Back(pending=True)


def _finish_open(client: Client, now) -> None:
    rows = BankLinkSession.select(BankLinkSession.id).where(
        BankLinkSession.client == client, BankLinkSession.status.in_(["open", "finishing"]),
        BankLinkSession.expires_at > now).order_by(BankLinkSession.id)
    for row in rows:
        finish(row.id)


def _latest(client: Client, now) -> BankLinkSession | None:
    """Of the client's sessions still alive or ended within TOLD_WITHIN, the one that
    started or ended last."""
    alive = BankLinkSession.status.in_(["open", "finishing"]) & (BankLinkSession.expires_at > now)
    ended = BankLinkSession.status.in_(SETTLED) & (BankLinkSession.finished_at >= now - TOLD_WITHIN)
    rows = BankLinkSession.select().where(BankLinkSession.client == client, alive | ended)
    return max(rows, key=lambda row: (row.finished_at or row.created_at, row.id), default=None)


def finish_by_token(link_token: str, reported: banks.LinkOutcome | None = None
                    ) -> Finished | None:
    """The provider's webhook names a session by its link token (None: not ours), and
    may say what it came to (`reported`)."""
    session = BankLinkSession.get_or_none(BankLinkSession.token_digest == digest(link_token))
    return None if session is None else finish(session.id, reported)


def finish(session_id: int, reported: banks.LinkOutcome | None = None) -> Finished:
    if not _claim(session_id):
        session = BankLinkSession.get_by_id(session_id)
        return Finished(session.status, session.outcome or "")
    session = BankLinkSession.get_by_id(session_id)
    try:
        found = _finish(session, reported)
    except Exception:
        _set(session_id, "open")
        raise
    _set(session_id, "open" if found.status == "pending" else found.status, found.message)
    if found.status == "exited":
        bank = session.connection.institution_name if session.connection_id else "the bank"
        events.record("connection.login_failed", client=session.client, actor="client",
                      bank=bank, reason=found.message)
    return found


def _claim(session_id: int) -> bool:
    now = clock.now()
    open_ = BankLinkSession.status == "open"
    abandoned = (BankLinkSession.status == "finishing") & (
        BankLinkSession.claimed_at <= now - CLAIM_TIMEOUT)
    return bool(BankLinkSession.update(status="finishing", claimed_at=now).where(
        BankLinkSession.id == session_id, open_ | abandoned).execute())


def _set(session_id: int, status: str, outcome: str = "") -> None:
    finished = clock.now() if status in SETTLED else None
    BankLinkSession.update(status=status, outcome=outcome[:300] or None,
                           finished_at=finished).where(BankLinkSession.id == session_id).execute()


def _finish(session: BankLinkSession, reported: banks.LinkOutcome | None) -> Finished:
    provider = banks.provider()
    outcome = _outcome(provider, session, reported)
    if outcome.status != "success":
        message = outcome.message or (LEFT if outcome.status == "exited" else "")
        return Finished(outcome.status, message)
    if session.purpose == "restore":
        connection = session.connection
        connections.restored(connection)
        return Finished("done", connection.institution_name, (connection.refreshed(),))
    added = tuple(_add(provider, session.client, item) for item in outcome.items)
    return Finished("done", ", ".join(c.institution_name for c in added), added)


def _outcome(provider: banks.BankProvider, session: BankLinkSession,
             reported: banks.LinkOutcome | None) -> banks.LinkOutcome:
    """What the session came to: as the webhook said, when it said enough (a new login
    needs its public tokens; a restore, only that it succeeded), else as the provider
    tells it now."""
    if reported is not None and (reported.status == "exited" or (
            reported.status == "success" and (reported.items or session.purpose == "restore"))):
        return reported
    token = tokens.unseal(session.token_sealed)
    if token is None:
        return banks.LinkOutcome("exited", message=UNREADABLE)
    return provider.link_outcome(token)


def _add(provider: banks.BankProvider, client: Client, added: banks.AddedItem):
    item = provider.exchange(added.public_token)
    institution = banks.Institution(
        item.institution_id or added.institution_id or "unknown",
        item.institution_name or added.institution_name or "Your bank")
    return connections.attach(client, institution, item, provider.accounts(item.access_token))

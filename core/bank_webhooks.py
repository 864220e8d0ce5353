"""What a bank provider tells us by webhook, once verified by its driver and put in
core's words (`BankEvent`), handled exactly once.

The provider retries a delivery it thinks failed (Plaid: for up to 24 hours) and
gives no delivery id, so a delivery is known by the SHA-256 of its body (what
Plaid's signature covers): the first of a body within RETRY_WINDOW is handled, a
repeat is acknowledged and changes nothing. The effects are idempotent as well — a
connection breaks, or works again, once per change (conditional updates) — and a
handling that fails forgets its claim, so the provider's retry does it. "Updates are
available" is not deduplicated: Plaid sends the same body every time, and a sync
from the stored cursor is harmless when there is nothing new.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from peewee import IntegrityError

from . import bank_links, clock, connections, reconnects
from .db import database
from .models import BankConnection, ProviderWebhook

log = logging.getLogger(__name__)
RETRY_WINDOW = timedelta(hours=24)
KINDS = {"login_required", "expiring", "repaired", "revoked", "updates", "link_finished",
         "ignored"}


@dataclass(frozen=True)
class BankEvent:
    kind: str  # one of KINDS
    item_id: str | None = None
    reason: str = ""  # in plain words, for the firm
    link_token: str | None = field(default=None, repr=False)
    code: str = ""  # the provider's own, for the record


def receive(provider: str, body_digest: str, event: BankEvent) -> str:
    """Handle one delivery; what came of it, in a few words (for the log)."""
    if event.kind == "ignored":
        return f"ignored {event.code}".strip()
    if event.kind == "updates":
        return _updates(provider, event)
    if not _claim(provider, body_digest, event):
        return "duplicate: already handled"
    try:
        return _handle(provider, event)
    except Exception:
        ProviderWebhook.delete().where(ProviderWebhook.digest == body_digest).execute()
        raise


def _claim(provider: str, body_digest: str, event: BankEvent) -> bool:
    now = clock.now()
    try:
        with database.atomic():
            ProviderWebhook.create(digest=body_digest, provider=provider,
                                   kind=(event.code or event.kind)[:80],
                                   item_id=event.item_id, received_at=now)
        return True
    except IntegrityError:
        pass
    later = ProviderWebhook.update(received_at=now).where(  # the same body, a day later: new
        ProviderWebhook.digest == body_digest, ProviderWebhook.received_at <= now - RETRY_WINDOW)
    if later.execute():
        return True
    ProviderWebhook.update(repeats=ProviderWebhook.repeats + 1).where(
        ProviderWebhook.digest == body_digest).execute()
    return False


def _handle(provider: str, event: BankEvent) -> str:
    if event.kind == "link_finished":
        finished = bank_links.finish_by_token(event.link_token or "")
        return "not our link session" if finished is None else f"link session {finished.status}"
    connection = _connection(provider, event.item_id)
    if connection is None:
        return "not our item"
    if event.kind in {"login_required", "expiring"}:
        broke = connections.mark_broken(connection, event.reason or "the bank wants a new login")
        if connection.refreshed().status != "needs_reconnect":
            return "not working, nothing to restore"
        # (also when it was broken already: a handling that failed after the break
        # retries its invite; the invite goes once a break all the same)
        invite = reconnects.after_break(connection)
        return f"{'needs restoring' if broke else 'already needs restoring'}; invite: {invite}"
    if event.kind == "repaired":
        return "working again" if connections.repaired(connection) else "already working"
    if event.kind == "revoked":
        done = connections.mark_disconnected(connection, event.reason or "access withdrawn")
        return "disconnected" if done else "already disconnected"
    return f"no handling for {event.kind}"


def _updates(provider: str, event: BankEvent) -> str:
    connection = _connection(provider, event.item_id)
    if connection is None:
        return "not our item"
    connections.sync_soon(connection.id)
    return "sync asked for"


def _connection(provider: str, item_id: str | None) -> BankConnection | None:
    if not item_id:
        return None
    return BankConnection.get_or_none(BankConnection.provider == provider,
                                      BankConnection.item_id == item_id)

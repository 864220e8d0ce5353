"""What a bank provider tells us by webhook, once verified by its driver and put in
core's words (`BankEvent`), applied every time it comes.

A provider's webhook names no event and carries no time: Plaid's ITEM ERROR and
LOGIN_REPAIRED are the same bytes for the second break (or repair) of an item as for
the first, and its retries of a delivery it thinks failed are those bytes too. So a
body seen before proves nothing, and nothing is dropped for it. The effects are
idempotent by state instead — a connection breaks only when it works, works again
only when broken (`core.banking.connections`' conditional updates), so a retry changes
nothing and a genuine second break after a repair breaks it again, with a new notice
and a new automatic invite. The automatic invite goes once a break
(`core.banking.reconnects.after_break`), however often the break is said; a link session
finishes once (`core.banking.link_sessions`' claim). `provider_webhook` keeps a record of the
bodies, by their SHA-256 (what Plaid's signature covers): when one last came and
how many times it came again. "Updates are available" is not recorded: a sync from
the stored cursor is harmless when there is nothing new.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from core.platform import clock
from core.records import BankConnection, ProviderWebhook

from . import banks, connections, link_sessions, reconnects

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BankEvent:
    # login_required | expiring | repaired | revoked | updates | link_finished | ignored
    kind: str
    item_id: str | None = None
    reason: str = ""  # in plain words, for the firm
    link_token: str | None = field(default=None, repr=False)
    code: str = ""  # the provider's own, for the record
    # link_finished: what the webhook says the session came to (None: ask the provider)
    outcome: banks.LinkOutcome | None = field(default=None, repr=False)


def receive(provider: str, body_digest: str, event: BankEvent) -> str:
    """Handle one delivery; what came of it, in a few words (for the log)."""
    if event.kind == "ignored":
        return f"ignored {event.code}".strip()
    if event.kind == "updates":
        return _updates(provider, event)
    _record(provider, body_digest, event)
    return _handle(provider, event)


def _record(provider: str, body_digest: str, event: BankEvent) -> None:
    now = clock.now()
    ProviderWebhook.insert(
        digest=body_digest, provider=provider, kind=(event.code or event.kind)[:80],
        item_id=event.item_id, received_at=now,
    ).on_conflict(conflict_target=[ProviderWebhook.digest], update={
        ProviderWebhook.received_at: now, ProviderWebhook.repeats: ProviderWebhook.repeats + 1,
    }).execute()


def _handle(provider: str, event: BankEvent) -> str:
    if event.kind == "link_finished":
        finished = link_sessions.finish_by_token(event.link_token or "", event.outcome)
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

"""A client's signed-in sessions, kept on the server so that they can end.

Accepting a link starts one. The browser holds a random 256-bit id (inside the
signed session cookie); the database keeps only its SHA-256. A session ends when
the client signs out, when the firm revokes the client's invite or replaces their
link, after CLIENT_SESSION_IDLE without use, and CLIENT_SESSION_MAX after it began
— whichever comes first. A copied cookie stops working at that moment too.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from core.firms import firm_settings
from core.platform import clock
from core.platform.config import settings
from core.platform.db import Param, Prepared
from core.records import Client, ClientAccount, ClientSession, Firm

TOUCH_EVERY = timedelta(minutes=1)  # last-seen is written at most this often

# A live session with its client, the client's firm (and its first admin's email, for
# the pages' footer) and whether the client has an account: every signed-in page asks,
# so one indexed query (by the id's digest), its SQL written once.
_LIVE = Prepared(
    ClientSession.select(
        ClientSession, Client, Firm,
        firm_settings.FIRST_ADMIN_EMAIL.alias("first_admin_email"),
        ClientAccount.select(ClientAccount.id).where(ClientAccount.client == Client.id)
        .limit(1).alias("account_id"))
    .join(Client, on=(ClientSession.client == Client.id))
    .join(Firm, on=(Client.firm == Firm.id))
    .where((ClientSession.digest == Param("digest")) & ClientSession.ended_at.is_null()))


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def start(client_id: int, invite_id: int | None = None) -> str:
    """A new session for the client; the id the browser keeps."""
    session_id = secrets.token_urlsafe(32)
    now = clock.now()
    ClientSession.create(client=client_id, invite=invite_id, digest=_digest(session_id),
                         created_at=now, last_seen_at=now)
    return session_id


def current(session_id: str | None, now: datetime | None = None) -> ClientSession | None:
    """The live session with this id (touched as seen), or None. Its `client` comes with
    the client's `firm`; `account_id` is the client's account's, None without one."""
    if not session_id or len(session_id) > 100:
        return None
    now = now or clock.now()
    config = settings()
    row = _LIVE.first(digest=_digest(session_id))
    if row is None:
        return None
    firm_settings.first_admin_known(row.client.firm, row.first_admin_email)
    if now - row.last_seen_at > config.client_session_idle:
        _end(row.id, now, "idle")
        return None
    if now - row.created_at > config.client_session_max:
        _end(row.id, now, "too old")
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        ClientSession.update(last_seen_at=now).where(ClientSession.id == row.id).execute()
    return row


def end(session_id: str | None, reason: str = "signed out") -> None:
    if session_id:
        row = ClientSession.get_or_none(ClientSession.digest == _digest(session_id))
        if row is not None:
            _end(row.id, clock.now(), reason)


def end_all(client_id: int, reason: str) -> int:
    """End every live session of a client (their link was revoked or replaced)."""
    return (ClientSession.update(ended_at=clock.now(), end_reason=reason)
            .where(ClientSession.client == client_id, ClientSession.ended_at.is_null())
            .execute())


def _end(row_id: int, now: datetime, reason: str) -> None:
    ClientSession.update(ended_at=now, end_reason=reason).where(
        ClientSession.id == row_id, ClientSession.ended_at.is_null()).execute()

"""API tokens for connected applications (the seed's "connect with your LedgerSync login
credentials"): a staff member's email and password, exchanged once for a token.

The answer is the seed's green check, or a red X with the reason and the fix — wrong
email or password, subscription not active, account suspended, too many tries (five
failures for one email in 15 minutes pause it) — and, with no clients yet, a check
with a warning. A token is `lsk_` and 43 random characters (256 bits); only its
SHA-256 is stored, so it is shown once, at the exchange. Every request with it acts
as that staff member, within their firm and with their role, now: a removed staff
member's tokens go with them, a password change ends the tokens made before it
(exchange again, as a Slack link ends), a suspended firm or lapsed subscription is
refused. Admins list and revoke the firm's tokens; staff their own.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from peewee import fn

from core.platform import clock
from core.platform.errors import LedgerSyncError, NotFound, Refused
from core.records import ApiToken, Event, Firm, Staff, events

from . import access, firms

PREFIX = "lsk_"
MAX_FAILURES, FAILURE_WINDOW = 5, timedelta(minutes=15)
TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often


class Unauthorized(LedgerSyncError):
    """No token, an unknown or revoked one, or one its owner's password change ended."""


@dataclass(frozen=True)
class Exchanged:
    ok: bool
    reason: str = ""
    fix: str = ""
    code: str = ""  # wrong_credentials | subscription_inactive | suspended | too_many_tries
    token: str | None = field(default=None, repr=False)  # shown once
    record: ApiToken | None = None
    warning: str = ""


@dataclass(frozen=True)
class Caller:
    token: ApiToken
    staff: Staff
    firm: Firm

    @property
    def is_admin(self) -> bool:
        return self.staff.role == "admin"


def exchange(email: str, password: str, label: str = "") -> Exchanged:
    email = (email or "").strip().lower()[:254]
    who = f"api:{email}"[:80]
    if _recent_failures(who) >= MAX_FAILURES:
        return Exchanged(False, "Too many failed tries", "Wait 15 minutes, then try again.",
                         "too_many_tries")
    staff = Staff.get_or_none(fn.LOWER(Staff.email) == email)
    if not firms.check_password(staff, password):
        return _refused(who, "wrong_credentials", "Wrong email or password",
                        "Check both for typos, or reset your password at app.ledgersync.com "
                        "(Forgot Password) and use the new one.")
    problem = firm_problem(staff.firm)
    if problem:
        return _refused(who, *problem)
    return _issue(staff, label)


def firm_problem(firm: Firm) -> tuple[str, str, str] | None:
    """Why the firm's people can't use LedgerSync now (code, reason, fix), or None."""
    if firm.suspended:
        return ("suspended", "Your LedgerSync account is suspended",
                "Contact LedgerSync support at support@ledgersync.com.")
    if firm.subscription_status not in access.ACTIVE_SUBSCRIPTIONS:
        return ("subscription_inactive", "Your LedgerSync subscription is not active",
                "Renew it in LedgerSync (Settings → Billing), then connect again.")
    return None


def _issue(staff: Staff, label: str) -> Exchanged:
    raw = PREFIX + secrets.token_urlsafe(32)
    record = ApiToken.create(firm=staff.firm_id, staff=staff, digest=digest(raw),
                             hint=raw[:len(PREFIX) + 4], label=(label or "").strip()[:100])
    events.record("staff.api_token_created", firm=staff.firm_id, actor=f"staff:{staff.id}",
                  email=staff.email, token=record.id)
    warning = "" if staff.firm.clients.exists() else (
        "No clients set up yet: add one (ledgersync clients add, or /ledgersync client add); "
        "until then the client list is empty.")
    return Exchanged(True, token=raw, record=record, warning=warning)


def _refused(who: str, code: str, reason: str, fix: str) -> Exchanged:
    events.record("staff.api_token_refused", actor=who, reason=reason)
    return Exchanged(False, reason, fix, code)


def _recent_failures(who: str) -> int:
    since = clock.now() - FAILURE_WINDOW
    return Event.select().where(Event.kind == "staff.api_token_refused", Event.actor == who,
                                Event.at >= since).count()


def digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def authenticate(raw: str | None) -> Caller:
    """The caller a token stands for, now; Unauthorized (401) or Refused (403)."""
    if not raw or not raw.startswith(PREFIX) or len(raw) > 100:
        raise Unauthorized("Send your API token: Authorization: Bearer lsk_…")
    token = ApiToken.get_or_none(ApiToken.digest == digest(raw))
    if token is None or token.revoked_at is not None:
        raise Unauthorized("This API token was revoked or never existed; exchange your "
                           "email and password for a new one")
    staff = token.staff
    if staff.password_changed_at > token.created_at:
        raise Unauthorized("The password changed since this token was made; exchange the "
                           "new one for a new token")
    problem = firm_problem(staff.firm)
    if problem:
        raise Refused(f"{problem[1]}. {problem[2]}")
    _touch(token)
    return Caller(token, staff, staff.firm)


def _touch(token: ApiToken) -> None:
    now = clock.now()
    ApiToken.update(last_used_at=now).where(
        ApiToken.id == token.id,
        ApiToken.last_used_at.is_null() | (ApiToken.last_used_at <= now - TOUCH_EVERY)).execute()


def listed(firm: Firm, staff: Staff | None = None) -> list[ApiToken]:
    """The firm's tokens (only `staff`'s, when given), newest first."""
    query = ApiToken.select(ApiToken, Staff).join(Staff).where(ApiToken.firm == firm)
    if staff is not None:
        query = query.where(ApiToken.staff == staff)
    return list(query.order_by(ApiToken.id.desc()))


def visible_to(caller: Caller) -> list[ApiToken]:
    return listed(caller.firm, None if caller.is_admin else caller.staff)


def revoke(firm: Firm, token_id: int, *, by: Staff | None, actor: str) -> ApiToken:
    """Revoke one of the firm's tokens: an admin any, staff their own (`by` None: the
    command line, acting for the firm)."""
    token = ApiToken.get_or_none(ApiToken.id == token_id, ApiToken.firm == firm)
    if token is None:
        raise NotFound("No such API token")
    if by is not None and by.role != "admin" and token.staff_id != by.id:
        raise Refused("Only an admin can revoke a colleague's API token")
    if token.revoked_at is None:
        ApiToken.update(revoked_at=clock.now(), revoked_by=actor[:80]).where(
            ApiToken.id == token.id, ApiToken.revoked_at.is_null()).execute()
        events.record("staff.api_token_revoked", firm=firm, actor=actor, token=token.id,
                      email=token.staff.email)
    return token.refreshed()

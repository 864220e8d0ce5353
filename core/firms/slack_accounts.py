"""Linking a Slack user to a LedgerSync account through a one-time web page, so a
password is never typed in Slack.

`/ledgersync connect` asks (`ask`): a link `{PUBLIC_BASE_URL}/slack/link/<token>`,
128 random bits, valid 10 minutes, for the Slack team and user who asked. Only the
token's digest (HMAC under SECRET_KEY) is stored; log lines mask the token
(`tokens.redact`). The first browser to open the page owns it (`opened`: the page
gives it a random cookie whose digest is kept); any other browser is refused, so a
link that reaches someone else is of no use to them. `use` checks the seed's reasons
through `access.connect` — with its throttle — for the user who asked and nobody
else, and spends the link only when the account was linked: a wrong password may be
corrected until the link expires.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.platform import clock, tokens
from core.platform.config import settings
from core.platform.db import database
from core.platform.errors import Refused
from core.records import SlackLinkRequest, Staff, events

from . import access

LINK_TTL = timedelta(minutes=10)
KEEP_SPENT = timedelta(days=1)  # long enough to say "used" or "expired", then forgotten
PATH = "/slack/link/"
AGAIN = "Run /ledgersync connect again."
REFUSALS = {
    "unknown": "This link doesn't work. " + AGAIN,
    "expired": "This link has expired: it works for 10 minutes. " + AGAIN,
    "used": "This link was already used. " + AGAIN,
    "other_browser": "This link was opened in another browser. " + AGAIN,
}


class LinkRefused(Refused):
    """The page can't be used: `kind` is unknown, expired, used or other_browser."""

    def __init__(self, kind: str):
        super().__init__(REFUSALS[kind])
        self.kind = kind


@dataclass(frozen=True)
class Opened:
    """A usable linking page: who asked, and until when."""

    team_id: str
    user_id: str
    expires_at: datetime


def ask(team_id: str, user_id: str) -> str:
    """A new one-time linking page for this Slack user: its full URL."""
    token = tokens.mint()
    now = clock.now()
    SlackLinkRequest.delete().where(SlackLinkRequest.expires_at < now - KEEP_SPENT).execute()
    SlackLinkRequest.create(digest=tokens.digest(token), team_id=team_id, user_id=user_id,
                            created_at=now, expires_at=now + LINK_TTL)
    events.record("slack.link_asked", actor=f"{team_id}:{user_id}")
    return settings().public_base_url.rstrip("/") + PATH + token


def opened(token: str, browser_secret: str) -> Opened:
    """The page is opened: bound to this browser if it is the first, refused if another
    browser opened it first (or it is unknown, expired or used)."""
    request = _usable(token)
    _bind(request, browser_secret)
    return Opened(request.team_id, request.user_id, request.expires_at)


def use(token: str, browser_secret: str, email: str, password: str) -> access.Connected:
    """*Save Integration*: the seed's green check or red X for the Slack user who asked.
    The link is spent, in the same transaction, only when the account was linked."""
    with database.atomic():
        request = _usable(token)
        _bind(request, browser_secret)
        result = access.connect(request.team_id, request.user_id, email, password)
        if result.ok and not _spent(request):
            raise LinkRefused("used")  # another tab won the race: this one changes nothing
    return result


def connected_as(staff: Staff) -> str:
    """'Connected as Ann Lee (admin) at Smith & Co' (plain text: escape it to show it)."""
    return f"Connected as {staff.name or staff.email} ({staff.role}) at {staff.firm.name}"


def _usable(token: str) -> SlackLinkRequest:
    request = _find(token)
    if request is None:
        raise LinkRefused("unknown")
    if request.used_at is not None:
        raise LinkRefused("used")
    if clock.as_utc(request.expires_at) <= clock.now():
        raise LinkRefused("expired")
    return request


def _find(token: str) -> SlackLinkRequest | None:
    if not tokens.looks_like_token(token or ""):
        return None
    digests = tokens.candidate_digests(token)
    return SlackLinkRequest.get_or_none(SlackLinkRequest.digest.in_(digests))


def _bind(request: SlackLinkRequest, browser_secret: str) -> None:
    """The first browser to show up owns the page; any other is refused."""
    if not browser_secret:
        raise LinkRefused("other_browser")
    mine = tokens.digest(browser_secret)
    if request.browser is None:
        SlackLinkRequest.update(browser=mine).where(
            SlackLinkRequest.digest == request.digest, SlackLinkRequest.browser.is_null()
        ).execute()
        request = SlackLinkRequest.get_by_id(request.digest)  # who won, if two raced
    if not hmac.compare_digest(request.browser or "", mine):
        raise LinkRefused("other_browser")


def _spent(request: SlackLinkRequest) -> bool:
    return bool(SlackLinkRequest.update(used_at=clock.now()).where(
        SlackLinkRequest.digest == request.digest, SlackLinkRequest.used_at.is_null()
    ).execute())

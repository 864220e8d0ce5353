"""What an invite link says when opened, and accepting it.

Opening (a GET, which phones' link previews also do) changes nothing but the
first-opened time; only `accept` consumes the link. A dead link says why (used,
expired, revoked, replaced) and names only the firm that sent it; an unknown
token gets the same answer as a dead one, so guessing teaches nothing. A link
withdrawn by "This isn't me" (`disown`) stays done: it offers nothing more, and
asking for a new link from it tells no one.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime

from peewee import JOIN

from core.firms import firm_settings
from core.messaging import notices, outbound
from core.platform import clock, tokens
from core.platform.db import Param, Prepared, database
from core.platform.errors import Refused
from core.records import (
    OPEN_INVITE,
    Client,
    ClientAccount,
    Event,
    Firm,
    Invite,
    Message,
    Staff,
    events,
)

from . import invites

DEAD_REASONS = {
    "accepted": "This link has already been used.",
    "expired": "This link expired.",
    "revoked": "This link was withdrawn.",
    "superseded": "A newer link replaced this one.",
    "unknown": "This link doesn't work.",
}


@dataclass(frozen=True)
class LinkState:
    state: str  # pending | accepted | expired | revoked | superseded | unknown
    invite: Invite | None = None

    @property
    def usable(self) -> bool:
        return self.state == "pending"

    @property
    def firm_name(self) -> str | None:
        return self.invite.firm.name if self.invite else None

    @property
    def reason(self) -> str:
        return DEAD_REASONS.get(self.state, "")

    @property
    def disowned(self) -> bool:
        """Withdrawn by "This isn't me"."""
        return self.state == "revoked" and disowned(self.invite)


@dataclass(frozen=True)
class Accepted:
    invite: Invite
    account: ClientAccount
    new_account: bool


# The invite a link names, with its client, firm and sender — and the firm's first
# admin's email, which its pages give to check with when the firm set none
# (`firm_settings.contact`): one indexed query (by the token's digest), its SQL written
# once (a link's page is opened by every client).
_SENDER = Staff.alias()
_BY_DIGEST = Prepared(
    Invite.select(Invite, Client, Firm, _SENDER,
                  firm_settings.FIRST_ADMIN_EMAIL.alias("first_admin_email"))
    .join(Client, on=(Invite.client == Client.id))
    .switch(Invite).join(Firm, on=(Invite.firm == Firm.id))
    .switch(Invite).join(_SENDER, JOIN.LEFT_OUTER, on=(Invite.sent_by == _SENDER.id))
    .where(Invite.token_digest == Param("digest")))


def find(token: str) -> Invite | None:
    """The invite of a link (its client, firm and sender loaded with it), or None. The
    digest under each key still accepted (SECRET_KEY, then its fallbacks) is tried in
    turn: one query for a link of today's key."""
    if not tokens.looks_like_token(token or ""):
        return None
    for digest in tokens.candidate_digests(token):
        invite = _BY_DIGEST.first(digest=digest)
        if invite is not None and hmac.compare_digest(invite.token_digest, digest):
            invite.client.firm = invite.firm  # (the same firm: no second look-up)
            firm_settings.first_admin_known(invite.firm, invite.first_admin_email)
            return invite
    return None


def check(token: str, now: datetime | None = None) -> LinkState:
    invite = find(token)
    if invite is None:
        return LinkState("unknown")
    return LinkState(invite.status(now or clock.now()), invite)


def opened(token: str, state: LinkState | None = None) -> LinkState:
    """The link was opened: record the first time, change nothing else. (`state`: the
    link as just checked; opened before, nothing is written.)"""
    now = clock.now()
    state = state or check(token, now)
    if state.invite is not None and state.usable and state.invite.first_clicked_at is None:
        first = (
            Invite.update(first_clicked_at=now)
            .where(Invite.id == state.invite.id, Invite.first_clicked_at.is_null())
            .execute()
        )
        if first:
            events.record("invite.opened", client=state.invite.client_id,
                          firm=state.invite.firm_id, invite=state.invite, actor="client")
    return state


def accept(token: str) -> Accepted:
    """Consume the link and give the client their limited account."""
    now = clock.now()
    state = check(token, now)
    if not state.usable:
        raise Refused(state.reason)
    invite = state.invite
    with database.atomic():
        won = (
            Invite.update(accepted_at=now, first_clicked_at=invite.first_clicked_at or now)
            .where(Invite.id == invite.id, OPEN_INVITE, Invite.expired_at.is_null(),
                   Invite.expires_at > now)
            .execute()
        )
        if not won:
            raise Refused(check(token).reason or DEAD_REASONS["unknown"])
        account, created = ClientAccount.get_or_create(client=invite.client_id)
        events.record("invite.accepted", client=invite.client_id, firm=invite.firm_id,
                      invite=invite, actor="client", new_account=created)
        notice = notices.write(invite.firm_id, "accepted",
                               f"{invite.client.name} accepted the invite.",
                               client=invite.client_id, invite=invite,
                               dedupe_key=f"notice-accepted-{invite.id}")
    outbound.dispatch(notice)
    invite.accepted_at = now
    return Accepted(invite, account, created)


def request_new_link(token: str) -> bool:
    """The client asks for a new link from a dead one: the firm is told, once per
    link. Unknown tokens get the same answer and do nothing, and so does a link
    withdrawn by "This isn't me" (the firm was told to check the address first)."""
    state = check(token)
    if state.invite is None or state.usable or state.disowned:
        return False
    invite = state.invite
    client = invite.client
    notice = notices.write(
        invite.firm_id, "new_link_requested",
        f"{client.name} asked for a new link (theirs {DEAD_WORDS[state.state]}). "
        f"Send one: /ledgersync resend {client.name}",
        client=client, invite=invite, dedupe_key=f"notice-newlink-{invite.id}")
    if notice is None:
        return False
    events.record("invite.new_link_requested", client=client, invite=invite, actor="client")
    outbound.dispatch(notice)
    return True


def asked_by_text_unchecked(client: Client, held: invites.Disowned, word: str
                            ) -> Message | None:
    """NEW or LINK texted from a number someone said a link to wasn't theirs (`held`,
    see `invites.unchecked`): no link goes, and the firm is told, once a day, to check
    the number first — a notice with no Resend on it. The notice to dispatch, if new."""
    events.record("invite.new_link_requested", client=client, actor="client", by="text")
    return notices.write(
        client.firm_id, "new_link_unchecked",
        f"{client.name}'s number, {held.shown}, texted {word}: they'd like a new link. "
        f"Someone who opened the last link sent there said it isn't them, so none was sent. "
        f"Check {client.name}'s number before you send one: /ledgersync status {client.name}",
        client=client,
        dedupe_key=f"notice-newlink-unchecked-{client.id}-{clock.now().date().isoformat()}")


DEAD_WORDS = {"accepted": "was already used", "expired": "expired", "revoked": "was withdrawn",
              "superseded": "was replaced by a newer one"}


def disown(token: str) -> bool:
    """"This isn't me": whoever opened a usable link says it wasn't meant for them.
    The link stops working at once and the firm is told in plain words, once; True
    then. Anything else (a dead or unknown link) does nothing and says nothing."""
    now = clock.now()
    state = check(token, now)
    if not state.usable:
        return False
    invite = state.invite
    client = invite.client
    with database.atomic():
        won = Invite.update(revoked_at=now).where(Invite.id == invite.id, OPEN_INVITE).execute()
        if not won:
            return False
        events.record("invite.disowned", client=client, invite=invite, actor="client",
                      channel=invite.channel)
        notice = notices.write(invite.firm_id, "not_me", _disowned_words(invite),
                               client=client, invite=invite,
                               dedupe_key=f"notice-not-me-{invite.id}")
    outbound.dispatch(notice)
    return True


def disowned(invite: Invite) -> bool:
    """Whether whoever opened this link said it isn't them."""
    return Event.select().where(Event.invite == invite.id,
                                Event.kind == "invite.disowned").exists()


def _disowned_words(invite: Invite) -> str:
    client = invite.client
    how, where = ("text", "number") if invite.channel == "sms" else ("email", "email address")
    return (f"Someone who opened the link in the {how} sent to {client.name} says it isn't "
            f"them. The link no longer works. Check {client.name}'s {where} before you send "
            f"another: /ledgersync status {client.name}")

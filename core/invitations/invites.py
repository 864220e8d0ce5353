"""Invites from the firm's side: send, resend, remind, revoke, expire, and which
invite is open. What happens when the client opens a link (accept, "This isn't me",
a new link asked for) is `links.py`; the automatic day-3 reminder, `reminders.py`.

Rules (from the product articles): a link is valid INVITE_TTL (5 days); a resend
mints a new link and the old one stops working at once; staff may remind while
the invite is open.
A client has at most one open invite (a partial unique index enforces it), so a
double-submitted `send` cannot text twice. When whoever opened a link said "This
isn't me", nothing more goes to that number or email (`unchecked`) until staff
change it, or send anyway after checking it with the client (`checked=True`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from peewee import IntegrityError, fn

from core.messaging import notices, optouts, outbound, templates
from core.messaging.quiet_hours import zone_for
from core.platform import clock, db, i18n, phones, tokens
from core.platform.config import settings
from core.platform.db import Param, Prepared, database
from core.platform.errors import Fix, InvalidInput, Refused
from core.records import OPEN_INVITE, Client, ClientAccount, Event, Invite, Message, Staff, events

from . import schedule, sessions

CHANNELS = ("sms", "email")
PURPOSES = ("connect", "reconnect")
MANUAL_REMINDER_INTERVAL = timedelta(hours=24)
_CHANNEL_NAMES = {"sms": "SMS", "email": "email"}


def _span(wait: timedelta) -> str:
    """RESEND_COOLDOWN in words: `a minute`, `90 seconds`, `5 minutes`."""
    seconds = int(wait.total_seconds())
    if seconds == 60:
        return "a minute"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} hour{'s' if seconds != 3600 else ''}"
    if seconds % 60 == 0:
        return f"{seconds // 60} minutes"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


@dataclass(frozen=True)
class Sent:
    invite: Invite
    message: Message
    replaced: Invite | None = None

    @property
    def to(self) -> str:
        return self.message.to_addr


# --- sending ----------------------------------------------------------------------


def send(client: Client, channel: str | None = None, *, purpose: str = "connect",
         banks: list[str] | None = None, by: Staff | None = None,
         checked: bool = False) -> Sent:
    """Invite a client: a new link by SMS or email, valid INVITE_TTL. (`checked`: staff
    checked with the client an address someone said isn't theirs; see `unchecked`.)"""
    channel = _channel(client, channel)
    _check_can_invite(client, channel, purpose, checked)
    now = clock.now()
    _record_overdue_expiry(client, now)
    current = open_invite(client)
    if current is not None:
        raise Refused(
            f"{client.name} already has a link, sent {_ago(current.sent_at, now)}, that expires "
            f"{clock.short_date(current.expires_at, zone_for(client))}. Use resend for a new "
            "link, or remind."
        )
    return _issue(client, channel, purpose, banks, by, now, replaced=None)


def resend(client: Client, channel: str | None = None, *, purpose: str | None = None,
           banks: list[str] | None = None, by: Staff | None = None,
           cooldown: bool = True, checked: bool = False) -> Sent:
    """A new link; the previous one stops working at once. (`cooldown=False`: the
    previous one never arrived, so another may follow at once. `checked`: staff
    checked with the client an address someone said isn't theirs; see `unchecked`.)"""
    now = clock.now()
    _record_overdue_expiry(client, now)
    previous = latest(client)
    channel = _channel(client, channel or (previous.channel if previous else None))
    purpose = purpose or (previous.purpose if previous else "connect")
    _check_can_invite(client, channel, purpose, checked)
    current = open_invite(client)
    # A second click on the same channel within RESEND_COOLDOWN is a double-click; a
    # link by the other channel (the text didn't reach them: try email) is not.
    wait = settings().resend_cooldown
    if (cooldown and current is not None and current.channel == channel
            and now - current.sent_at < wait):
        raise Refused(f"A link went to {client.name} by {_CHANNEL_NAMES[channel]} "
                      f"{_ago(current.sent_at, now)}; give it {_span(wait)} before sending "
                      f"another by {_CHANNEL_NAMES[channel]}")
    if banks is None and previous is not None:
        banks = previous.banks
    return _issue(client, channel, purpose, banks, by, now, replaced=current)


def send_checked(client: Client, channel: str, *, purpose: str = "connect",
                 by: Staff | None = None, overdue: bool = True) -> Sent:
    """`send` for a caller that has just made its checks (a bulk run: `bulk.why_not`,
    contact, opt-out, accepted, a valid invite pending) and holds a transaction: written
    in it, no savepoint (a clash — another open invite, by the unique index — is
    refused and the caller's transaction rolls back). The message as written.
    `overdue`: False when the caller has just seen that no open invite of the client
    is past its expiry unrecorded (else that expiry is recorded first)."""
    now = clock.now()
    if overdue:
        _record_overdue_expiry(client, now)
    try:
        invite, message = _write(client, channel, purpose, None, by, now, None)
    except IntegrityError:
        raise Refused(f"Another link for {client.name} was sent just now") from None
    outbound.dispatch(message)
    schedule.invite_sent(invite)
    return Sent(invite, message)


def _issue(client, channel, purpose, banks, by, now, replaced) -> Sent:
    try:
        with database.atomic():
            invite, message = _write(client, channel, purpose, banks, by, now, replaced)
    except IntegrityError:
        raise Refused(f"Another link for {client.name} was sent just now") from None
    outbound.dispatch(message)
    schedule.invite_sent(invite)
    return Sent(invite, message.refreshed(), replaced)


def _write(client, channel, purpose, banks, by, now, replaced) -> tuple[Invite, Message]:
    """The invite, its message and its event (in the caller's transaction)."""
    config, token = settings(), tokens.mint()
    if replaced is not None:
        _supersede(replaced, now)
    invite = db.create(
        Invite,
        firm=client.firm_id, client=client, purpose=purpose, channel=channel,
        token_digest=tokens.digest(token), token_sealed=tokens.seal(token),
        banks=_banks(client, banks), sent_by=by, sent_at=now,
        expires_at=now + config.invite_ttl,
        reminder_due_at=now + config.reminder_after, replaces=replaced,
    )
    message = _queue(invite, "invite", token)
    events.record("invite.resent" if replaced else "invite.sent", client=client,
                  invite=invite, actor=events.actor_of(by), channel=channel,
                  purpose=purpose, to=message.to_addr)
    return invite, message


def _supersede(invite: Invite, now: datetime) -> None:
    done = (
        Invite.update(superseded_at=now)
        .where(Invite.id == invite.id, OPEN_INVITE)
        .execute()
    )
    if not done:
        raise IntegrityError("invite changed under us")
    sessions.end_all(invite.client_id, "link replaced")


def _channel(client: Client, channel: str | None) -> str:
    if channel is None:
        return "sms" if client.phone else "email"
    channel = channel.strip().lower()
    channel = {"text": "sms", "mail": "email", "e-mail": "email"}.get(channel, channel)
    if channel not in CHANNELS:
        raise InvalidInput(f"Send by sms or email, not '{channel[:20]}'")
    return channel


def _check_can_invite(client: Client, channel: str, purpose: str, checked: bool = False) -> None:
    if purpose not in PURPOSES:
        raise InvalidInput(f"An invite is to connect or reconnect, not '{purpose[:20]}'")
    address = address_for(client, channel)
    if optouts.is_opted_out(address):
        raise Refused(f"{client.name} has opted out of messages at {address}; "
                      "they must opt back in (reply START) first")
    if purpose == "connect" and has_account(client):
        raise Refused(f"{client.name} has already accepted; ask them to reconnect instead")
    disowned = None if checked else unchecked(client, channel)
    if disowned is not None:
        raise Unchecked(client, disowned, purpose)


# --- "This isn't me": an address to check before anything more goes to it ----------


@dataclass(frozen=True)
class Disowned:
    """A link whose opener said "This isn't me", at an address still to check."""

    invite: Invite  # the link disowned
    address: str  # where it went, as sent (E.164 or the email)
    at: datetime  # when they said so

    @property
    def shown(self) -> str:
        return phones.display(self.address) if self.invite.channel == "sms" else self.address

    @property
    def what(self) -> str:
        return "number" if self.invite.channel == "sms" else "email address"


class Unchecked(Refused):
    """Sending to an address someone said isn't the client's: staff check it with the
    client first, then change it, or send anyway (`checked=True`, "force")."""

    def __init__(self, client: Client, disowned: Disowned, purpose: str):
        self.client, self.disowned, self.purpose = client, disowned, purpose
        super().__init__(
            f"Someone who opened the last link sent to {disowned.shown} said it isn't "
            f"{client.name}. Check {client.name}'s {disowned.what} with them before sending "
            f"anything: if it's wrong, change it; if it's right, resend with force.",
            fixes=(Fix("edit_client", client.name,
                       "phone" if disowned.invite.channel == "sms" else "email"),
                   Fix("resend_force", client.name)))


# Read for every invite sent (see db.Prepared).
_DISOWNED = Prepared(Event.select(Event, Invite).join(Invite)
                     .where(Event.client == Param("client"), Event.kind == "invite.disowned")
                     .order_by(Event.id.desc()))
_HAS_ACCOUNT = Prepared(ClientAccount.select(ClientAccount.id)
                        .where(ClientAccount.client == Param("client")).limit(1))
_OPEN = Prepared(Invite.select().where(Invite.client == Param("client"), OPEN_INVITE,
                                       Invite.expired_at.is_null())
                 .order_by(Invite.id.desc()).limit(1))


def unchecked(client: Client, channel: str | None = None) -> Disowned | None:
    """The latest link (by `channel`, if given) whose opener said "This isn't me",
    while the address it went to is still the client's and no link went there since
    (staff sent anyway): nothing more goes to that address until then. None when
    there is none."""
    for event in _DISOWNED.rows(client=client.id):
        invite = event.invite
        if channel is not None and invite.channel != channel:
            continue
        address = _sent_to(invite)
        current = client.phone if invite.channel == "sms" else client.email
        if address and current and address.lower() == current.lower() and not _sent_since(
                client, invite, address):
            return Disowned(invite, address, event.at)
    return None


def _sent_to(invite: Invite) -> str | None:
    first = (Message.select(Message.to_addr)
             .where(Message.invite == invite, Message.kind == "invite").first())
    return first.to_addr if first else None


def _sent_since(client: Client, invite: Invite, address: str) -> bool:
    """A later link went to `address` (staff sent anyway)."""
    return Message.select().where(
        Message.client == client, Message.kind == "invite", Message.invite > invite.id,
        fn.LOWER(Message.to_addr) == address.lower()).exists()


def address_for(client: Client, channel: str) -> str:
    if channel == "sms":
        fixes = (Fix("edit_client", client.name, "phone"),
                 *((Fix("invite_by", client.name, "email"),) if client.email else ()))
        if not client.phone:
            raise Refused(f"{client.name} has no mobile number; add one or invite by email",
                          fixes=fixes)
        if client.phone_problem:
            raise Refused(f"{client.name}'s number can't get texts ({client.phone_problem}); "
                          "fix the number or invite by email", fixes=fixes)
        return client.phone
    if not client.email:
        raise Refused(f"{client.name} has no email address; add one or invite by SMS",
                      fixes=(Fix("edit_client", client.name, "email"),
                             *((Fix("invite_by", client.name, "sms"),) if client.phone
                               else ())))
    return client.email


def _banks(client: Client, banks: list[str] | None) -> list[str]:
    return list(banks) if banks else list(client.banks or [])


def _queue(invite: Invite, kind: str, token: str, dedupe_key: str | None = None) -> Message:
    client = invite.client
    text = templates.InviteText(
        firm=client.firm.name, first_name=client.first_name, link=link(token),
        expires_at=invite.expires_at, tz=zone_for(client), purpose=invite.purpose,
        support_email=settings().support_email, name=client.name,
        language=i18n.of_client(client),
    )
    rendered = templates.render("invite" if kind == "invite" else "reminder", invite.channel, text)
    # Stored with the link masked: the sender rebuilds it from the sealed token.
    stored = replace(rendered, body=tokens.mask_link(rendered.body, token),
                     html=tokens.mask_link(rendered.html, token))
    message = outbound.write(
        firm=invite.firm_id, client=client, invite=invite, channel=invite.channel,
        kind=kind, to_addr=address_for(client, invite.channel), rendered=stored,
        dedupe_key=dedupe_key or f"invite-{invite.id}-{kind}", strict=True,
    )  # a second one raises IntegrityError: the caller's transaction is undone
    return message


def link(token: str) -> str:
    return f"{settings().public_base_url}/i/{token}"


# --- reminding, revoking ------------------------------------------------------------


def remind(client: Client, *, by: Staff | None = None, force: bool = False) -> Sent:
    """A manual reminder with the same link: while the invite is open, once a day
    (`force` allows another after RESEND_COOLDOWN, a minute by default)."""
    now = clock.now()
    _record_overdue_expiry(client, now)
    invite = open_invite(client)
    if invite is None:
        raise Refused(_nothing_open(client, now))
    if optouts.is_opted_out(address_for(client, invite.channel)):
        raise Refused(f"{client.name} has opted out of messages; they must reply START first")
    token = tokens.unseal(invite.token_sealed)
    if token is None:
        raise Refused("This link can't be repeated (the keys changed); use resend for a new one")
    window = settings().resend_cooldown if force else MANUAL_REMINDER_INTERVAL
    with database.atomic():
        won = (
            Invite.update(last_manual_reminder_at=now)
            .where(Invite.id == invite.id, OPEN_INVITE,
                   Invite.last_manual_reminder_at.is_null()
                   | (Invite.last_manual_reminder_at <= now - window))
            .execute()
        )
        if not won:
            raise Refused(
                f"{client.name} was reminded {_ago(invite.last_manual_reminder_at or now, now)}; "
                "one reminder a day (use force to send another)"
            )
        message = _queue(invite, "reminder", token, f"invite-{invite.id}-remind-{now:%Y%m%d%H%M%S}")
        events.record("invite.reminded", client=client, invite=invite,
                      actor=events.actor_of(by), manual=True, forced=force)
    outbound.dispatch(message)
    return Sent(invite, message.refreshed())


@dataclass(frozen=True)
class Revoked:
    invite: Invite | None  # the open invite withdrawn, if there was one
    sessions_ended: int  # the client's account signed out on every device

    def __str__(self) -> str:
        done = ["the link no longer works"] if self.invite else []
        if self.sessions_ended:
            done.append("they are signed out of their account")
        return "; ".join(done)


def revoke(client: Client, *, by: Staff | None = None) -> Revoked:
    """Withdraw the open link, and sign the client out wherever they are signed in
    (a link that reached the wrong person, an account to close). Refused only when
    there is neither."""
    now = clock.now()
    _record_overdue_expiry(client, now)
    invite = open_invite(client)
    with database.atomic():
        ended = sessions.end_all(client.id, "access revoked by the firm")
        if invite is not None:
            done = Invite.update(revoked_at=now).where(Invite.id == invite.id,
                                                       OPEN_INVITE).execute()
            if not done:
                raise Refused(f"{client.name}'s invite changed just now; look at status again")
            events.record("invite.revoked", client=client, invite=invite,
                          actor=events.actor_of(by), sessions_ended=ended)
            invite.revoked_at = now
        elif ended:
            events.record("client.signed_out", client=client, actor=events.actor_of(by),
                          sessions_ended=ended)
        else:
            raise Refused(_nothing_open(client, now))
    return Revoked(invite, ended)


def _nothing_open(client: Client, now: datetime) -> str:
    last = latest(client)
    if last is None:
        return f"{client.name} has not been invited yet"
    state, tz = last.status(now), zone_for(client)
    if state == "accepted":
        return f"{client.name} already accepted on {clock.short_date(last.accepted_at, tz)}"
    if state == "expired":
        return (f"{client.name}'s link expired {clock.short_date(last.expires_at, tz)}"
                "; use resend for a new one")
    return f"{client.name}'s last link was {state}; use resend for a new one"


# --- expiry -------------------------------------------------------------------------


def expiry_due(now: datetime | None = None):
    """Open invites past their expiry whose expiry is not yet recorded (indexed)."""
    now = now or clock.now()
    return Invite.select().where(
        OPEN_INVITE, Invite.expired_at.is_null(), Invite.expires_at <= now
    ).order_by(Invite.expires_at)


def expire(invite_id: int, now: datetime | None = None) -> bool:
    """Record that an invite expired and tell the firm; True for exactly one
    caller, once it is due."""
    now = now or clock.now()
    with database.atomic():
        won = (
            Invite.update(expired_at=now)
            .where(Invite.id == invite_id, OPEN_INVITE, Invite.expired_at.is_null(),
                   Invite.expires_at <= now)
            .execute()
        )
        if won:
            invite = Invite.get_by_id(invite_id)
            events.record("invite.expired", client=invite.client_id, firm=invite.firm_id,
                          invite=invite)
            notice = notices.invite_expired(invite)
    if won:
        outbound.dispatch(notice)
    return bool(won)


def _record_overdue_expiry(client: Client, now: datetime) -> None:
    for invite in _OVERDUE.rows(client=client.id, now=now):
        expire(invite.id, now)


_OVERDUE = Prepared(expiry_due(Param("now")).where(Invite.client == Param("client")))


# --- reading ------------------------------------------------------------------------


def open_invite(client: Client) -> Invite | None:
    return _OPEN.first(client=client.id)


_LATEST = Prepared(Invite.select().where(Invite.client == Param("client"))
                   .order_by(Invite.id.desc()).limit(1))


def latest(client: Client) -> Invite | None:
    return _LATEST.first(client=client.id)


def has_account(client: Client) -> bool:
    return _HAS_ACCOUNT.first(client=client.id) is not None


def pending(firm, now: datetime | None = None) -> list[Invite]:
    """Open invites of a firm, soonest expiry first."""
    now = now or clock.now()
    return list(
        Invite.select(Invite, Client).join(Client)
        .where(Invite.firm == firm, OPEN_INVITE, Invite.expired_at.is_null(),
               Invite.expires_at > now)
        .order_by(Invite.expires_at)
    )


def _ago(then: datetime, now: datetime) -> str:
    seconds = int((now - then).total_seconds())
    if seconds < 10:
        return "just now"
    if seconds < 60:
        return f"{seconds} seconds ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"

"""What happened to a client: where they stand and what to do next, the invite
timeline, deliveries, opt-out and bank connections, in words a person reads.

Drivers render it (CLI, Slack card). Core gives every time as an aware datetime and
the client's zone, never a formatted date: the Slack card shows each reader their own
zone, the terminal labels the client's (`local_text`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from functools import reduce

from peewee import JOIN

from core.banking import connections
from core.invitations import invites
from core.messaging import optouts
from core.messaging.notices import DM
from core.messaging.quiet_hours import zone_for
from core.platform import clock, phones
from core.platform.db import Param, Prepared
from core.records import BankConnection, Channel, Client, Event, Invite, Message, Status

# Every event kind core records, in plain words. `kind:variant` words win when the
# detail says so (`automatic`, `by`); a kind missing here reads as a phrase made
# from its name, never as its code.
EVENT_WORDS = {
    # the client's story
    "client.added": "Added as a client",
    "client.updated": "Details changed: {fields}",
    "client.signed_out": "Signed out of their client account by the firm",
    "client.texted": "Texted the firm ({chars} characters)",
    "client.answered": "The firm's reply was texted to them",
    "invite.sent": "Invited by {channel_word}{purpose_words}",
    "invite.resent": "New link sent by {channel_word}{purpose_words}; the old one stopped working",
    "invite.reminded": "Reminded by the firm",
    "invite.reminded:automatic": "Automatic reminder sent",
    "invite.opened": "Opened the link",
    "invite.accepted": "Accepted; client account ready",
    "invite.revoked": "Invite revoked; the link stopped working",
    "invite.expired": "Link expired unused",
    "invite.new_link_requested": "Asked for a new link",
    "invite.new_link_requested:text": "Asked for a new link by text",
    "invite.new_link_by_text": "Asked for a new link by text; one was sent",
    "reminder.skipped": "Automatic reminder not sent: {reason}",
    "optout.stopped": "Opted out of texts ({source})",
    "optout.resumed": "Opted back in to texts ({source})",
    "connection.connected": "Connected {bank}",
    "connection.restored": "Restored {bank}",
    "connection.broken": "{bank} needs restoring: {reason}",
    "connection.repaired": "{bank} works again (the bank says so)",
    "connection.disconnected": "{bank} disconnected: {reason}",
    "connection.auto_invited": "Asked to reconnect {bank} automatically",
    "connection.auto_invite_skipped": "No automatic reconnect invite for {bank}: {reason}",
    "connection.login_failed": "Couldn't connect {bank}: {reason}",
    "invite.disowned": "Whoever opened the link said it isn't them; the link stopped working",
    "signin.code_sent": "Asked for a sign-in code",
    "signin.code_sent:sms": "Asked for a sign-in code; it went by text",
    "signin.code_sent:email": "Asked for a sign-in code; it went by email",
    "signin.succeeded": "Signed in to their client account with a code",
    "signin.locked": "Five wrong sign-in codes: that code stopped working",
    "signin.wrong_code": "A wrong sign-in code was typed",
    "signin.closed": "Too many wrong sign-in codes in a day ({count}): signing in with a code "
                     "is closed until they accept a new link",
    # the firm's own log: never in a client's timeline (FIRM_KINDS)
    "clients.imported": "Clients imported: {summary}",
    "firm.created": "Firm created",
    "firm.notify_channel": "Notices channel chosen",
    "firm.auto_reconnect": "Automatic reconnect invites turned {on_word}",
    "firm.setting_changed": "Firm setting {setting} changed",
    "staff.added": "{email} added as {role}",
    "staff.removed": "{email} removed",
    "staff.role_changed": "{email} is now {role}",
    "staff.password_changed": "Password changed for {email}",
    "staff.api_token_created": "API token #{token} made for {email}",
    "staff.api_token_refused": "API token refused: {reason}",
    "staff.api_token_revoked": "API token #{token} of {email} revoked",
    "slack.connected": "Connected to Slack",
    "slack.connect_failed": "Slack connection refused: {reason}",
    "slack.disconnected": "Disconnected from Slack",
    "slack.installed": "LedgerSync installed in the firm's Slack workspace",
    "slack.removed": "LedgerSync removed from the firm's Slack workspace ({why})",
    "slack.link_asked": "Asked to connect a Slack user through the web page",
    "support.added": "{email} added to LedgerSync support",
    "support.removed": "{email} removed from LedgerSync support",
    "support.lookup": "LedgerSync support looked up “{what}”",
    "bulk.started": "Bulk invite #{run} started",
    "bulk.canceled": "Bulk invite #{run} canceled; {items} not sent",
    "bulk.finished": "Bulk invite #{run} finished",
}
FIRM_KINDS = ("bulk.", "clients.", "firm.", "slack.", "staff.", "support.")

DELIVERY_WORDS = {
    "pending": "waiting to send",
    "sending": "sending",
    "queued": "queued",
    "sent": "sent",
    "delivered": "delivered",
    "undelivered": "not delivered",
    "failed": "failed",
    "canceled": "not sent",
}
NOT_DELIVERED = (Status.UNDELIVERED, Status.FAILED, Status.CANCELED)

# What a firm notice was about (`notice_<what>`), for the one "Firm told" line.
NOTICE_WORDS = {
    "accepted": "accepted",
    "bank_connected": "bank connected",
    "bank_restored": "bank restored",
    "bank_disconnected": "a bank was disconnected",
    "needs_restoring": "a bank needs restoring",
    "expired": "invite expired",
    "new_link_requested": "asked for a new link",
    "opted_out": "opted out",
    "opted_in": "opted back in",
    "delivery_failed": "a message was not delivered",
    "client_text": "they texted",
    "not_me": "someone said the link wasn't theirs",
    "new_link_unchecked": "asked for a new link from a number to check",
    "digest": "the firm's digest",
}
BANKS_NAMED = 5


@dataclass
class Line:
    at: datetime  # aware UTC
    text: str


@dataclass(frozen=True)
class Situation:
    """Where the client stands, which decides the next step.

    key: not_invited | pending | expired | revoked | superseded | accepted (no bank
    yet) | connected | needs_restoring | restoring_asked (a reconnect link is open)
    | opted_out | disowned (whoever opened the latest link said it isn't them: the
    number or email it went to must be checked before anything more is sent)."""

    key: str
    at: datetime | None = None  # the instant the words name: link expiry, revoked at…
    left: str = ""  # "3 days left" while a link works
    banks: tuple[str, ...] = ()  # connected banks, or the ones needing restoring
    to: str = ""  # disowned: the number or email to check, as shown

    @property
    def bank_names(self) -> str:
        shown = ", ".join(self.banks[:BANKS_NAMED])
        more = len(self.banks) - BANKS_NAMED
        return f"{shown} and {more} more" if more > 0 else shown


@dataclass
class ClientStatus:
    client: Client
    invite: Invite | None
    state: str  # the latest invite's: not invited | pending | accepted | expired | …
    opted_out: bool
    situation: Situation
    zone: tzinfo  # the client's
    timeline: list[Line] = field(default_factory=list)
    connections: list[BankConnection] = field(default_factory=list)

    @property
    def broken(self) -> bool:
        return any(c.status == "needs_reconnect" for c in self.connections)


def for_client(client: Client, now: datetime | None = None, limit: int = 30) -> ClientStatus:
    now = now or clock.now()
    invite = invites.latest(client)
    state = invite.status(now) if invite else "not invited"
    opted_out = any(optouts.is_opted_out(a) for a in (client.phone, client.email) if a)
    banks = connections.for_client(client)
    return ClientStatus(
        client=client, invite=invite, state=state, opted_out=opted_out,
        situation=_disowned(client, invite) or situation(state, invite, banks, opted_out, now),
        zone=zone_for(client), timeline=_timeline(client, limit), connections=banks,
    )


def _disowned(client: Client, invite: Invite | None) -> Situation | None:
    """Whoever opened the latest link said it isn't them, and the address it went to
    is unchanged: that comes before any other next step."""
    held = invites.unchecked(client) if invite is not None and invite.revoked_at else None
    if held is None or held.invite.id != invite.id:
        return None
    return Situation("disowned", held.at, to=held.shown)


def local_text(at: datetime, tz: tzinfo) -> str:
    """'Mon 23 Nov, 10:00 AM EST': plain text in `tz`, labelled with its zone."""
    return f"{clock.short_datetime(at, tz)} {clock.as_utc(at).astimezone(tz).tzname()}"


def time_left(until: datetime, now: datetime) -> str:
    left = clock.as_utc(until) - clock.as_utc(now)
    if left.days >= 1:
        return f"{left.days} day{'s' if left.days != 1 else ''} left"
    hours = int(left.total_seconds() // 3600)
    return f"{hours} h left" if hours > 0 else "under an hour left"


# --- where they stand ---------------------------------------------------------------


def situation(state: str, invite: Invite | None, banks: list[BankConnection],
              opted_out: bool, now: datetime) -> Situation:
    found = _situation(state, invite, banks, now)
    if opted_out and found.key != "connected":
        return Situation("opted_out", banks=found.banks)  # every next step would be refused
    return found


def _situation(state, invite, banks, now) -> Situation:
    broken = _named(banks, "needs_reconnect")
    reconnecting = state == "pending" and invite.purpose == "reconnect"
    if broken:
        return (Situation("restoring_asked", invite.expires_at,
                          time_left(invite.expires_at, now), broken)
                if reconnecting else Situation("needs_restoring", banks=broken))
    active = _named(banks, "active")
    if state == "accepted" or (reconnecting and active):  # a reconnect link's work is done
        return Situation("connected" if active else "accepted", invite.accepted_at, banks=active)
    if state == "pending":
        return Situation("pending", invite.expires_at, time_left(invite.expires_at, now))
    ended = {"expired": "expires_at", "revoked": "revoked_at", "superseded": "superseded_at"}
    return Situation(state.replace(" ", "_"),
                     getattr(invite, ended[state]) if state in ended else None)


def _named(banks: list[BankConnection], state: str) -> tuple[str, ...]:
    return tuple(c.institution_name for c in banks if c.status == state)


# --- the timeline -------------------------------------------------------------------


def _timeline(client: Client, limit: int) -> list[Line]:
    """Oldest first; what happened at the same instant stays in the order it happened."""
    zone = zone_for(client)
    lines = [Line(clock.as_utc(e.at), event_text(e, zone))
             for e in reversed(_EVENTS.rows(client=client.id, limit=limit))]
    lines += [Line(clock.as_utc(m.updated_at), delivery_text(m))
              for m in reversed(_DELIVERIES.rows(client=client.id, limit=limit))]
    told = _notices_line(client)
    if told:
        lines.append(told)
    return sorted(lines, key=lambda line: line.at)[-limit:]


# The timeline's statements, newest first (see db.Prepared: a status is asked often).
# The client's own events — not the firm's log (staff, Slack, bulk…) — with their invite:
_EVENTS = Prepared(
    Event.select(Event, Invite).join(Invite, JOIN.LEFT_OUTER)
    .where(reduce(lambda where, prefix: where & ~Event.kind.startswith(prefix), FIRM_KINDS,
                  Event.client == Param("client")))
    .order_by(Event.at.desc(), Event.id.desc()).limit(Param("limit")))
# Texts and emails to the client (firm notices are one line apart):
_DELIVERIES = Prepared(
    Message.select().where(Message.client == Param("client"), Message.direction == "out",
                           Message.channel != Channel.SLACK)
    .order_by(Message.id.desc()).limit(Param("limit")))


# The automatic reminder is said of one link among several (a resend's is not the first
# link's): which.
OF_WHICH_LINK = {"invite.reminded", "reminder.skipped"}


def event_text(event: Event, tz: tzinfo | None = None) -> str:
    detail = dict(event.detail or {})
    variant = "automatic" if detail.get("automatic") else detail.get("by")
    words = EVENT_WORDS.get(f"{event.kind}:{variant}") or EVENT_WORDS.get(event.kind)
    if words is None:
        return humanise(event.kind)
    return (_fill(words, detail) or humanise(event.kind)) + _which_link(event, tz)


def _which_link(event: Event, tz: tzinfo | None) -> str:
    """' (the SMS link of Mon 23 Nov)', for what is said of one link of several."""
    automatic = event.kind == "reminder.skipped" or (event.detail or {}).get("automatic")
    if event.kind not in OF_WHICH_LINK or not automatic or event.invite_id is None:
        return ""
    invite = event.invite
    channel = "SMS" if invite.channel == "sms" else "email"
    return f" (the {channel} link of {clock.short_date(invite.sent_at, tz or UTC)})"


def humanise(code: str) -> str:
    """'connection.paused_by_bank' → 'Connection paused by bank': never the raw code."""
    words = " ".join(code.replace(".", " ").replace("_", " ").split())
    return (words[:1].upper() + words[1:]) if words else "Something happened"


class _Detail(dict):
    def __missing__(self, key):
        return ""


def _fill(words: str, detail: dict) -> str:
    values = _Detail({k: ", ".join(map(str, v)) if isinstance(v, list) else v
                      for k, v in detail.items()})
    values["channel_word"] = "SMS" if detail.get("channel") == "sms" else "email"
    values["on_word"] = "on" if detail.get("on") else "off"
    values["purpose_words"] = (" to restore bank connections"
                               if detail.get("purpose") == "reconnect" else "")
    try:
        text = words.format_map(values)
    except (IndexError, ValueError, AttributeError):
        return ""
    text = text.replace(" ()", "").replace("“”", "").strip()
    return text.removesuffix(":").strip()


def delivery_text(message: Message) -> str:
    state = DELIVERY_WORDS.get(message.status, message.status)
    if message.channel == Channel.SLACK:
        return f"Firm told ({_notice_words(message.kind)}): {state}"
    labels = {"invite": "Invite", "reminder": "Reminder", "auto_reminder": "Automatic reminder",
              "reply": "Staff reply", "signin_code": "Sign-in code"}
    label = labels.get(message.kind) or (
        "Automatic answer" if message.kind.startswith("answer_") else
        message.kind.replace("_", " ").capitalize())
    sms = message.channel == Channel.SMS
    to = phones.display(message.to_addr) if sms else message.to_addr
    text = f"{label} {'SMS' if sms else 'email'} to {to}: {state}"
    if message.error_message:
        text += f" ({message.error_message})"
    return text


def _notice_words(kind: str) -> str:
    what = kind.removeprefix("notice_")
    return NOTICE_WORDS.get(what) or humanise(what).lower()


def _notices_line(client: Client) -> Line | None:
    """Every notice the firm got about this client, as one line ("Firm told 4 times
    (latest: accepted)"): each notice once, however many admins it went to by DM."""
    told = _NOTICES.rows(client=client.id)  # newest first; a client has a few
    if not told:
        return None
    latest, count = told[0], len(told)
    text = (f"Firm told {count} times (latest: {_notice_words(latest.kind)})" if count > 1
            else f"Firm told: {_notice_words(latest.kind)}")
    missed = [m for m in told if m.status in NOT_DELIVERED]
    if missed:
        why = f": {missed[0].error_message}" if missed[0].error_message else ""
        text += f"; {len(missed)} not delivered{why}"
    return Line(clock.as_utc(latest.created_at), text)


_NOTICES = Prepared(
    Message.select(Message.id, Message.kind, Message.status, Message.error_message,
                   Message.created_at)
    .where(Message.client == Param("client"), Message.direction == "out",
           Message.channel == Channel.SLACK, Message.kind.startswith("notice_"),
           Message.dedupe_key.is_null() | ~Message.dedupe_key.contains(DM))
    .order_by(Message.id.desc()))

"""A firm at a glance (Slack's App Home): its funnel of the last 30 days (`funnel`), open
invites soonest expiry first, clients whose bank connection needs restoring, who
accepted or connected lately, what could not be delivered and why, and where the
firm's notices go.

Each part holds its first rows and its total, so a driver can say "and 37 more".
The words are core's own (`status.time_left`, `status.event_text`,
`status.delivery_text`, the doctor's notices check); times are aware datetimes."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from peewee import JOIN, fn

from core.messaging.deliveries import FAILED
from core.messaging.quiet_hours import zone_for
from core.platform import clock
from core.records import OPEN_INVITE, BankConnection, Client, Event, Firm, Invite, Message

from . import doctor, funnel, status

SHOWN = 10  # rows per part
FUNNEL_NAMES = 3  # names a stall on the Home
RECENT = timedelta(days=14)  # accepts and connections
FAILED_SINCE = timedelta(days=7)  # as the doctor counts them ("this week")
RECENT_KINDS = ("invite.accepted", "connection.connected", "connection.restored")
BROKEN = BankConnection.status == "needs_reconnect"


@dataclass(frozen=True)
class Part:
    rows: list
    total: int

    @property
    def more(self) -> int:
        return max(self.total - len(self.rows), 0)


@dataclass(frozen=True)
class OpenInvite:
    client: Client
    channel: str  # sms | email
    purpose: str  # connect | reconnect
    expires_at: datetime
    left: str  # "3 days left"
    zone: tzinfo  # the client's


@dataclass(frozen=True)
class Restoring:
    client: Client
    banks: tuple[str, ...]  # the connections that need restoring
    since: datetime  # the latest of them broke then
    asked_until: datetime | None  # an open reconnect link works until then
    zone: tzinfo


@dataclass(frozen=True)
class Happened:
    client: Client
    at: datetime
    text: str  # "Connected Chase"
    zone: tzinfo


@dataclass(frozen=True)
class Failed:
    client: Client | None
    at: datetime
    text: str  # "Invite SMS to (212) 555-0134: failed (the number is not a mobile number)"
    zone: tzinfo  # the client's, or the firm's


@dataclass(frozen=True)
class Overview:
    firm: Firm
    notices: doctor.Check  # where firm notices go, or why they don't
    invites: Part  # of OpenInvite
    restoring: Part  # of Restoring
    recent: Part  # of Happened, newest first
    failed: Part  # of Failed, newest first
    now: datetime
    zone: tzinfo  # the firm's
    funnel: funnel.Funnel | None = None  # the last 30 days, 3 names a stall


def of(firm: Firm, now: datetime | None = None, shown: int = SHOWN) -> Overview:
    now = now or clock.now()
    return Overview(firm=firm, notices=doctor.notices_channel(firm),
                    invites=open_invites(firm, now, shown),
                    restoring=restoring(firm, now, shown), recent=recent(firm, now, shown),
                    failed=failed(firm, now, shown), now=now, zone=clock.zone(firm.timezone),
                    funnel=funnel.of(firm, now=now, names=FUNNEL_NAMES))


def _zone(client: Client | None, firm: Firm) -> tzinfo:
    """The client's zone (the firm's without one), with no query for the firm."""
    if client is None:
        return clock.zone(firm.timezone)
    client.firm = firm
    return zone_for(client)


def open_invites(firm: Firm, now: datetime, shown: int = SHOWN) -> Part:
    """As `/ledgersync pending` lists them: soonest expiry first."""
    query = (Invite.select(Invite, Client).join(Client)
             .where(Invite.firm == firm, OPEN_INVITE, Invite.expired_at.is_null(),
                    Invite.expires_at > now))
    rows = [OpenInvite(i.client, i.channel, i.purpose, i.expires_at,
                       status.time_left(i.expires_at, now), _zone(i.client, firm))
            for i in query.order_by(Invite.expires_at, Invite.id).limit(shown)]
    return Part(rows, query.count())


def restoring(firm: Firm, now: datetime, shown: int = SHOWN) -> Part:
    """Clients with a connection that needs restoring, the latest broken first."""
    since = fn.MAX(BankConnection.updated_at)
    query = (Client.select(Client, since.alias("since")).join(BankConnection)
             .where(Client.firm == firm, BROKEN).group_by(Client.id))
    found = list(query.order_by(since.desc(), Client.id).limit(shown))
    banks, asked = _broken_banks(found), _reconnect_links(found, now)
    rows = [Restoring(c, banks[c.id], clock.as_utc(_moment(c.since)), asked.get(c.id),
                      _zone(c, firm)) for c in found]
    total = (Client.select().join(BankConnection).where(Client.firm == firm, BROKEN)
             .distinct().count())
    return Part(rows, total)


def _moment(value) -> datetime:
    """An aggregate's datetime (SQLite hands it back as text)."""
    return value if isinstance(value, datetime) else BankConnection.updated_at.python_value(value)


def _broken_banks(found: list[Client]) -> dict[int, tuple[str, ...]]:
    names = defaultdict(list)
    for connection in (BankConnection.select()
                       .where(BankConnection.client.in_([c.id for c in found]), BROKEN)
                       .order_by(BankConnection.institution_name)):
        names[connection.client_id].append(connection.institution_name)
    return {client_id: tuple(banks) for client_id, banks in names.items()}


def _reconnect_links(found: list[Client], now: datetime) -> dict[int, datetime]:
    links = Invite.select().where(Invite.client.in_([c.id for c in found]), OPEN_INVITE,
                                  Invite.expired_at.is_null(), Invite.expires_at > now,
                                  Invite.purpose == "reconnect")
    return {invite.client_id: invite.expires_at for invite in links}


def recent(firm: Firm, now: datetime, shown: int = SHOWN) -> Part:
    """Accepts, new and restored connections of the last 14 days, newest first."""
    query = (Event.select(Event, Client).join(Client)
             .where(Event.firm == firm, Event.kind.in_(RECENT_KINDS), Event.at >= now - RECENT))
    rows = [Happened(e.client, clock.as_utc(e.at), status.event_text(e), _zone(e.client, firm))
            for e in query.order_by(Event.at.desc(), Event.id.desc()).limit(shown)]
    return Part(rows, query.count())


def failed(firm: Firm, now: datetime, shown: int = SHOWN) -> Part:
    """Texts, emails and notices that failed this week, newest first, each with the
    reason the provider gave, in words."""
    query = (Message.select(Message, Client).join(Client, JOIN.LEFT_OUTER)
             .where(Message.firm == firm, Message.direction == "out",
                    Message.status.in_(list(FAILED)), Message.created_at >= now - FAILED_SINCE))
    rows = [_failed_row(m, firm)
            for m in query.order_by(Message.updated_at.desc(), Message.id.desc()).limit(shown)]
    return Part(rows, query.count())


def _failed_row(message: Message, firm: Firm) -> Failed:
    client = message.client if message.client_id else None
    return Failed(client, clock.as_utc(message.updated_at), status.delivery_text(message),
                  _zone(client, firm))

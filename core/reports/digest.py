"""The firm's digest: one message to its notices channel each Monday at 9:00 in the
firm's zone (or each day: `firm set digest monday|daily|off`) — the last week's (or
day's) invites and connections, who is outstanding by stall reason (the first 10 names
of each, then "and N more"), bank connections that need restoring, deliveries that
failed, and the funnel's follow-ups.

When (`due`): from 9:00 to midnight of its day in the firm's zone, while the digest of
that day isn't written. The clock asks every minute, so a clock down at 9:00 and back
at 9:20 sends it at 9:20; one down all day sends none (the next one says the next
week). Exactly once (`send`): the digest's row, keyed by firm and day, and its notice
are written in one transaction; a second clock, or the same one a minute later, finds
the key taken (the unique index refuses it) and sends nothing — the database decides,
not the clock, which has no lock.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo

from peewee import IntegrityError, fn

from core.messaging import notices, outbound
from core.messaging.notices import DM
from core.platform import clock, db
from core.platform.db import database
from core.records import Event, Firm, FirmDigest, Invite, Message

from . import funnel, overview

SEND_AT = time(9)
SCHEDULES = {"monday": 7, "daily": 1}  # the days a digest reports
OUTSTANDING_DAYS = 30  # whose stall it lists: clients invited in the last 30 days
NAMES = 10


@dataclass(frozen=True)
class Group:
    """Clients who stall at one reason: the first names, and how many in all."""

    reason: str
    words: str
    count: int
    names: list[str]
    details: list[tuple[str, int]] = field(default_factory=list)

    @property
    def more(self) -> int:
        return max(self.count - len(self.names), 0)


@dataclass(frozen=True)
class Digest:
    """What one digest says, as it is kept (`FirmDigest.content`) and shown."""

    firm: str
    schedule: str  # monday | daily
    label: str  # "Mon 16 Nov – Sun 22 Nov"
    invited: int  # clients invited in the period
    links: int  # links sent in it (new links for the same client included)
    connected: int  # banks connected or restored in it
    outstanding: list[Group]  # of the clients invited in the last 30 days
    waiting: int  # of them, with a link still open
    broken: list[str]  # clients with a connection to restore (the first names)
    broken_total: int
    failures: list[tuple[str, int]]  # deliveries that failed in the period, by reason
    follow_ups: list[tuple[str, int, str]]  # (bulk selection, clients, the button's words)
    since: str  # the funnel's period, ISO instants, for the follow-up buttons
    until: str

    @property
    def title(self) -> str:
        return f"{'Weekly' if self.schedule == 'monday' else 'Daily'} digest for {self.firm}"

    @property
    def period(self) -> funnel.Period:
        return funnel.Period(datetime.fromisoformat(self.since),
                             datetime.fromisoformat(self.until),
                             f"last {OUTSTANDING_DAYS} days")

    def as_json(self) -> dict:
        return asdict(self)

    @classmethod
    def of_json(cls, data: dict) -> Digest:
        values = dict(data)
        values["outstanding"] = [Group(**{**g, "details": [tuple(d) for d in g["details"]]})
                                 for g in data.get("outstanding", [])]
        for key in ("failures", "follow_ups"):
            values[key] = [tuple(row) for row in data.get(key, [])]
        return cls(**values)

    @property
    def text(self) -> str:
        """The digest in plain words (the outbox; Slack's notification text)."""
        lines = [f"{self.title}, {self.label}: {_count(self.invited, 'client')} invited "
                 f"({_count(self.links, 'link')} sent), "
                 f"{_count(self.connected, 'bank')} connected or restored."]
        if self.outstanding:
            lines.append(f"Outstanding (invited in the last {OUTSTANDING_DAYS} days): " +
                         "; ".join(f"{g.words} ({g.count}): {_names(g.names, g.more)}"
                                   for g in self.outstanding) + ".")
        if self.broken_total:
            lines.append(f"Bank connections to restore ({self.broken_total}): "
                         f"{_names(self.broken, self.broken_total - len(self.broken))}.")
        if self.failures:
            lines.append("Not delivered: " + "; ".join(f"{reason} ({n})"
                                                       for reason, n in self.failures) + ".")
        return "\n".join(lines)


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _names(names: list[str], more: int) -> str:
    return ", ".join(names) + (f" and {more} more" if more else "")


# --- when ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    """A digest's day in the firm's zone, and the period it reports (UTC)."""

    day: date
    start: datetime
    end: datetime
    zone: tzinfo

    def key(self, firm_id: int) -> str:
        return f"digest-{firm_id}-{self.day.isoformat()}"


def slot(firm: Firm, now: datetime) -> Slot | None:
    """The digest the firm has due now, or None: its day (Mondays, or every day), from
    9:00 to midnight in its zone."""
    days = SCHEDULES.get(firm.digest)
    zone = clock.zone(firm.timezone)
    local = clock.as_utc(now).astimezone(zone)
    if days is None or local.time() < SEND_AT or (days == 7 and local.weekday() != 0):
        return None
    day = local.date()
    return Slot(day, _midnight(day - timedelta(days=days), zone), _midnight(day, zone), zone)


def _midnight(day: date, zone: tzinfo) -> datetime:
    return clock.as_utc(datetime.combine(day, time(0), tzinfo=zone))


def due(now: datetime | None = None) -> list[int]:
    """The firms whose digest is due now and not yet written (two queries, whatever
    the number of firms)."""
    now = now or clock.now()
    slots = {firm.id: slot(firm, now) for firm in Firm.select().where(Firm.digest != "off")}
    keys = {s.key(firm_id): firm_id for firm_id, s in slots.items() if s is not None}
    if not keys:
        return []
    written = {row.key for row in FirmDigest.select(FirmDigest.key)
               .where(FirmDigest.key.in_(list(keys)))}
    return sorted(firm_id for key, firm_id in keys.items() if key not in written)


# --- once ----------------------------------------------------------------------------


def send(firm_id: int, now: datetime | None = None) -> str:
    """Write and send the firm's digest if it is due and not written: "sent", or why
    not ("not due", "already sent")."""
    now = now or clock.now()
    firm = Firm.get_or_none(Firm.id == firm_id)
    due_now = slot(firm, now) if firm is not None else None
    if due_now is None:
        return "not due"
    key = due_now.key(firm.id)
    if FirmDigest.select().where(FirmDigest.key == key).exists():
        return "already sent"
    content = compose(firm, due_now, now)
    try:
        with database.atomic():
            claim = db.create(FirmDigest, firm=firm.id, key=key, schedule=firm.digest,
                              period_start=due_now.start, period_end=due_now.end,
                              content=content.as_json())
            message = notices.write(firm, "digest", content.text, dedupe_key=key)
            FirmDigest.update(message=message).where(FirmDigest.id == claim.id).execute()
    except IntegrityError:
        return "already sent"  # another clock wrote it first
    outbound.dispatch(message)
    return "sent"


def stored(message: Message) -> Digest | None:
    """What a digest notice says (its admins' copies by direct message too)."""
    key = (message.dedupe_key or "").split(DM)[0]
    row = FirmDigest.get_or_none(FirmDigest.key == key) if key else None
    return Digest.of_json(row.content) if row is not None else None


# --- what it says ----------------------------------------------------------------------


def compose(firm: Firm, when: Slot, now: datetime) -> Digest:
    outstanding = funnel.of(firm, funnel.period(f"{OUTSTANDING_DAYS}d", now=now, tz=when.zone),
                            now=now, names=NAMES)
    restoring = overview.restoring(firm, now, NAMES)
    return Digest(
        firm=firm.name, schedule=firm.digest, label=_label(when), **_sent(firm, when),
        connected=_connected(firm, when),
        outstanding=[Group(s.reason, s.words, s.count, [n.name for n in s.names],
                           list(s.details)) for s in outstanding.stalls],
        waiting=outstanding.waiting,
        broken=[row.client.name for row in restoring.rows], broken_total=restoring.total,
        failures=[(f.reason, f.count) for f in
                  funnel.failures_by_reason(firm, when.start, when.end)],
        follow_ups=[(f.selection, f.count, f.words) for f in outstanding.follow_ups],
        since=outstanding.period.start.isoformat(), until=outstanding.period.end.isoformat())


def _label(when: Slot) -> str:
    """'Mon 16 Nov – Sun 22 Nov' (a week), 'Sun 22 Nov' (a day)."""
    first = clock.short_date(when.start, when.zone)
    last = clock.short_date(when.end - timedelta(microseconds=1), when.zone)
    return first if first == last else f"{first} – {last}"


def _sent(firm: Firm, when: Slot) -> dict:
    row = (Invite.select(fn.COUNT(Invite.id).alias("links"),
                         fn.COUNT(Invite.client.distinct()).alias("invited"))
           .where(Invite.firm == firm, Invite.sent_at >= when.start, Invite.sent_at < when.end)
           .dicts().first())
    return {"links": row["links"] or 0, "invited": row["invited"] or 0}


def _connected(firm: Firm, when: Slot) -> int:
    return Event.select().where(Event.firm == firm, Event.at >= when.start, Event.at < when.end,
                                Event.kind.in_(["connection.connected",
                                                "connection.restored"])).count()

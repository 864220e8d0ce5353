"""The firm's funnel: how far the clients it invited got — invited, delivered, opened,
accepted, connected — how long connecting took (median and 90th percentile), and
where each of the others stands and why; for a period, by channel, by the staff member
who sent, by bulk run (and, for LedgerSync support, by firm).

Counted per client, never per invite (a resend, a reminder or a reconnect invite
doesn't count a client twice): the cohort is every client with an invite sent in the
period; a stage is reached when any of their invites of the period reached it (or a
later stage); the client is counted under their first invite of the period (its
channel, sender, run); time to connect runs from that first invite to the first bank
connected or restored after it. Where a client who didn't connect stands is the
furthest stage's blocker (`STALLS`, in the order they are decided). The rules are
written once, in SQL (`journeys`): one statement for the whole funnel, whatever the
number of invites. docs/funnel.md says the same for the firm.

Also what follows from it: the clients of a stall, for a follow-up through the bulk
path (`follow_up`), and deliveries that failed, by reason (`failures_by_reason`).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from peewee import SQL, fn

from core.invitations import bulk_plan
from core.messaging.deliveries import FAILED
from core.platform import clock
from core.platform.db import database
from core.platform.errors import InvalidInput
from core.records import BankConnection, Client, Firm, Message, Staff

from . import journeys

STAGES = ("invited", "delivered", "opened", "accepted", "connected")
STAGE_WORDS = {"invited": "Invited", "delivered": "Delivered", "opened": "Opened",
               "accepted": "Accepted", "connected": "Connected"}
# Where a client who didn't connect stands, in the order it is decided (`journeys`).
STALLS = {
    "withdrawn": "Said “This isn't me”",
    "revoked": "Invite revoked",
    "opted_out": "Opted out",
    "bank_failed": "Bank login failed",
    "no_bank": "Accepted, no bank connected",
    "not_delivered": "Not delivered",
    "not_accepted": "Opened but didn't accept",
    "expired": "Expired unopened",
}
WAITING = "waiting"  # not a stall: their link still works
WAITING_WORDS = "Link still open"
BY = ("staff", "channel", "run")
NAMES = 10  # names shown for each stall
DEFAULT_SINCE = "30d"
DAYS = re.compile(r"([0-9]{1,4})d")
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# The follow-ups: a bulk selection, the stall whose clients it takes, the button's words.
FOLLOW_UPS = {
    "opened_not_accepted": ("not_accepted", "Remind the {n} who opened but didn't accept"),
    "expired": ("expired", "Resend to the {n} whose links expired"),
    "needs_reconnect": (None, "Ask the {n} with a broken bank to reconnect"),
}


# --- the period ---------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    start: datetime  # aware UTC, included
    end: datetime  # aware UTC, excluded
    label: str  # "last 30 days", "Sun 1 Nov – Mon 30 Nov"

    @property
    def days(self) -> int:
        return max(1, round((self.end - self.start).total_seconds() / 86400))


def period(since: str | None = None, until: str | None = None, *, now: datetime | None = None,
           tz: tzinfo = UTC) -> Period:
    """`since`: the last N days (`30d`) or a date (`2026-11-01`, from its midnight in
    `tz`); `until`: a date, included (default: now). ASCII digits only."""
    now = now or clock.now()
    # (ending now, it takes what happened at this very instant too)
    end = (_day_start(_date(until, "until"), tz) + timedelta(days=1) if until
           else now + timedelta(microseconds=1))
    text = (since or DEFAULT_SINCE).strip().lower()
    days = DAYS.fullmatch(text)
    if days and 0 < int(days.group(1)) <= 3660:
        start = (end if until else now) - timedelta(days=int(days.group(1)))
        label = f"last {int(days.group(1))} days" if not until else ""
    else:
        start, label = _day_start(_date(text, "since"), tz), ""
    if start >= end:
        raise InvalidInput("The period ends before it starts", field="until")
    last = end - timedelta(microseconds=1)
    label = label or f"{clock.short_date(start, tz)} – {clock.short_date(last, tz)}"
    return Period(clock.as_utc(start), clock.as_utc(end), label)


def _date(text: str, name: str) -> date:
    text = text.strip()
    if ISO_DATE.fullmatch(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    words = "30d or 2026-11-01" if name == "since" else "a date, 2026-11-30"
    raise InvalidInput(f"'{text[:20]}' is not a period: use {words}", field=name)


def _day_start(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


# --- what the funnel holds ------------------------------------------------------------


@dataclass(frozen=True)
class Stages:
    invited: int = 0
    delivered: int = 0
    opened: int = 0
    accepted: int = 0
    connected: int = 0

    def count(self, stage: str) -> int:
        return getattr(self, stage)

    def rate(self, stage: str) -> float | None:
        """The share of the clients invited who reached `stage` (None: nobody invited)."""
        return self.count(stage) / self.invited if self.invited else None

    def __add__(self, other: Stages) -> Stages:
        return Stages(*(self.count(s) + other.count(s) for s in STAGES))


@dataclass(frozen=True)
class Timing:
    """Time to connect, in seconds, over the clients who connected."""

    connected: int = 0
    median: float | None = None
    p90: float | None = None


@dataclass(frozen=True)
class Named:
    id: int
    name: str


@dataclass(frozen=True)
class Stall:
    reason: str  # a key of STALLS
    count: int
    details: tuple[tuple[str, int], ...] = ()  # the provider's reasons, most first
    names: tuple[Named, ...] = ()  # the first NAMES, the longest waiting first

    @property
    def words(self) -> str:
        return STALLS[self.reason]

    @property
    def more(self) -> int:
        return max(self.count - len(self.names), 0)


@dataclass(frozen=True)
class Group:
    key: str  # the staff member's, run's or firm's id; the channel; '' for all
    label: str
    stages: Stages
    timing: Timing
    stalls: dict[str, int] = field(default_factory=dict)  # waiting too

    @property
    def waiting(self) -> int:
        return self.stalls.get(WAITING, 0)


@dataclass(frozen=True)
class FollowUp:
    selection: str  # a bulk selection (`bulk_plan.SELECTIONS`)
    count: int
    words: str  # the button: "Remind the 12 who opened but didn't accept"


@dataclass(frozen=True)
class Funnel:
    period: Period
    by: str | None
    total: Group
    groups: tuple[Group, ...]  # with `by`; else the total alone
    stalls: tuple[Stall, ...]  # most clients first
    follow_ups: tuple[FollowUp, ...] = ()

    @property
    def stages(self) -> Stages:
        return self.total.stages

    @property
    def timing(self) -> Timing:
        return self.total.timing

    @property
    def waiting(self) -> int:
        return self.total.waiting


# --- computing it ---------------------------------------------------------------------


def of(firm: Firm, when: Period | None = None, by: str | None = None, *,
       now: datetime | None = None, names: int = NAMES) -> Funnel:
    """The firm's funnel for a period (default: the last 30 days), by nothing, `staff`,
    `channel` or `run`."""
    if by not in (None, *BY):
        raise InvalidInput(f"By {', '.join(BY)}, not '{str(by)[:20]}'", field="by")
    now = now or clock.now()
    when = when or period(now=now, tz=clock.zone(firm.timezone))
    found = _read(journeys.summary(firm.id, when.start, when.end, now, by, names))
    funnel = _funnel(found, when, by)
    return Funnel(funnel.period, by, funnel.total, funnel.groups, funnel.stalls,
                  _follow_ups(firm, funnel.total))


def across_firms(when: Period, *, now: datetime | None = None) -> Funnel:
    """Every firm's funnel at once, a group a firm (for LedgerSync support)."""
    found = _read(journeys.summary(None, when.start, when.end, now or clock.now(), "firm", 0))
    return _funnel(found, when, "firm")


@dataclass
class _Found:
    """The summary rows, sorted into what each says."""

    # group → stall → (clients, reached delivered, opened, accepted)
    counts: dict = field(default_factory=lambda: defaultdict(lambda: defaultdict(_Tally)))
    details: dict = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    names: dict = field(default_factory=lambda: defaultdict(list))
    samples: dict = field(default_factory=lambda: defaultdict(dict))  # group → rank → s
    all_samples: dict = field(default_factory=dict)  # rank → seconds

    def stages(self, grp: str) -> Stages:
        tallies = self.counts[grp]
        total = sum(tallies.values(), _Tally())
        connected = tallies["connected"].n if "connected" in tallies else 0
        return Stages(total.n, total.delivered, total.opened, total.accepted, connected)

    def stalls(self, grp: str) -> dict[str, int]:
        return {stall: tally.n for stall, tally in self.counts[grp].items()}


@dataclass
class _Tally:
    n: int = 0
    delivered: int = 0
    opened: int = 0
    accepted: int = 0

    def __add__(self, other: _Tally) -> _Tally:
        return _Tally(self.n + other.n, self.delivered + other.delivered,
                      self.opened + other.opened, self.accepted + other.accepted)


def _read(rows: list[tuple]) -> _Found:
    found = _Found()
    for row in rows:
        r = dict(zip(journeys.COLUMNS, row, strict=True))
        part, grp, stall = r["part"], r["grp"], r["stall"]
        if part == "count":
            found.counts[grp][stall] += _Tally(*(int(r[k]) for k in (
                "n", "delivered", "opened", "accepted")))
            found.details[stall][_reason(stall, r["detail"])] += int(r["n"])
        elif part == "name":
            found.names[stall].append((r["nth"], Named(r["client_id"], r["name"])))
        else:  # to the millisecond (SQLite's julianday is that close)
            samples = found.samples[grp] if part == "time" else found.all_samples
            samples[r["nth"] - 1] = round(float(r["seconds"]), 3)
    return found


def _reason(stall: str, detail: str | None) -> str | None:
    """The provider's reason, in its words: a refused bank login's is in its event's
    detail (JSON); a failed delivery's is the message's."""
    if stall != "bank_failed" or not detail:
        return detail
    try:
        return str(json.loads(detail).get("reason") or "") or None
    except (ValueError, AttributeError):
        return None


def _funnel(found: _Found, when: Period, by: str | None) -> Funnel:
    labels = _labels(by, list(found.counts))
    groups = tuple(sorted(
        (Group(key, labels.get(key, key), found.stages(key),
               _timing(found.samples[key], found.stages(key).connected), found.stalls(key))
         for key in found.counts),
        key=lambda g: (-g.stages.invited, g.label)))
    everyone = sum((g.stages for g in groups), Stages())
    totals: dict[str, int] = defaultdict(int)
    for group in groups:
        for stall, n in group.stalls.items():
            totals[stall] += n
    everyones = found.all_samples if by else found.samples[""]
    total = Group("", "All", everyone, _timing(everyones, everyone.connected),
                  {k: v for k, v in totals.items() if k != "connected"})
    stalls = tuple(sorted((_stall(found, reason, totals[reason]) for reason in STALLS
                           if totals.get(reason)),
                          key=lambda s: (-s.count, list(STALLS).index(s.reason))))
    return Funnel(when, by, total, groups if by else (total,), stalls)


def _stall(found: _Found, reason: str, count: int) -> Stall:
    details = tuple(sorted(((text, n) for text, n in found.details[reason].items() if text),
                           key=lambda d: (-d[1], d[0])))
    names = tuple(named for _, named in sorted(found.names[reason], key=lambda n: n[0]))
    return Stall(reason, count, details, names)


def _timing(samples: dict[int, float], n: int) -> Timing:
    return Timing(n, _percentile(samples, n, 5), _percentile(samples, n, 9))


def _percentile(samples: dict[int, float], n: int, tenths: int) -> float | None:
    """The value at `tenths`/10 of the way through `n` sorted values, interpolated
    between the two ranks either side (as PostgreSQL's percentile_cont): `journeys`
    returned exactly those ranks."""
    if n == 0:
        return None
    position = tenths * (n - 1)
    low, part = divmod(position, 10)
    below = samples[low]
    above = samples[low + 1] if part else below
    return below + (above - below) * part / 10


def _labels(by: str | None, keys: list[str]) -> dict[str, str]:
    ids = [int(k) for k in keys if k.isdigit()]
    if by == "channel":
        return {"sms": "SMS", "email": "Email"}
    if by == "staff":
        found = {str(s.id): s.name or s.email for s in
                 Staff.select(Staff.id, Staff.name, Staff.email).where(Staff.id.in_(ids))}
        return {"": "No one (the command line, or automatic)", **found}
    if by == "run":
        return {"": "Single invites", **{str(i): f"Bulk invite #{i}" for i in ids}}
    if by == "firm":
        return {str(f.id): f.name for f in Firm.select(Firm.id, Firm.name).where(Firm.id.in_(ids))}
    return {}


# --- what follows from it ---------------------------------------------------------------


def _follow_ups(firm: Firm, total: Group) -> tuple[FollowUp, ...]:
    counts = {"opened_not_accepted": total.stalls.get("not_accepted", 0),
              "expired": total.stalls.get("expired", 0),
              "needs_reconnect": broken_clients(firm)}
    return tuple(FollowUp(selection, n, FOLLOW_UPS[selection][1].format(n=n))
                 for selection, n in counts.items() if n)


def broken_clients(firm: Firm) -> int:
    """Clients with a bank connection that needs restoring, now."""
    return (Client.select(Client.id).join(BankConnection)
            .where(Client.firm == firm, BankConnection.status == "needs_reconnect")
            .distinct().count())


def follow_up(firm: Firm, selection: str, when: Period, *, by: Staff | None = None,
              now: datetime | None = None) -> bulk_plan.Plan:
    """A bulk run, prepared for the firm to confirm, for the clients of a follow-up: those
    of the period's stall (`FOLLOW_UPS`), or every client with a broken bank. It obeys
    every rule a bulk run does (opt-outs, quiet hours, the sender's pace)."""
    if selection not in FOLLOW_UPS:
        raise InvalidInput("That follow-up is out of date: look at the funnel again")
    stall = FOLLOW_UPS[selection][0]
    among = None
    if stall is not None:
        text, params = journeys.clients_stalled(firm.id, when.start, when.end,
                                                now or clock.now(), stall)
        among = SQL(text, params)
    with database.atomic():
        journeys.planned_for_its_values()
        return bulk_plan.prepare(firm, selection, among=among, by=by)


@dataclass(frozen=True)
class Failure:
    reason: str  # as the provider gave it, in words
    count: int
    firms: int


def failures_by_reason(firm: Firm | None, start: datetime, end: datetime) -> list[Failure]:
    """Texts and emails to clients that failed between `start` and `end` (the firm's, or
    every firm's: None), by the provider's reason, most first."""
    count = fn.COUNT(Message.id)
    query = (Message.select(Message.error_message, count.alias("n"),
                            fn.COUNT(Message.firm.distinct()).alias("firms"))
             .where(Message.direction == "out", Message.channel.in_(["sms", "email"]),
                    Message.status.in_(list(FAILED)), Message.updated_at >= start,
                    Message.updated_at < end)
             .group_by(Message.error_message).order_by(count.desc(), Message.error_message))
    if firm is not None:
        query = query.where(Message.firm == firm)
    return [Failure(row.error_message or "no reason given", row.n, row.firms)
            for row in query]


# --- words ----------------------------------------------------------------------------


def took(seconds: float | None) -> str:
    """'40 min', '5.5 h', '2.3 days'; '—' for nothing to measure."""
    if seconds is None:
        return "—"
    if seconds < 3600:
        return f"{max(1, round(seconds / 60))} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h".replace(".0 h", " h")
    return f"{seconds / 86400:.1f} days".replace(".0 days", " days")


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{round(rate * 100)}%"


def bar(rate: float | None, width: int = 20) -> str:
    """A plain bar for a share, to half a character: '█████████▌'."""
    halves = round((rate or 0) * width * 2)
    return "█" * (halves // 2) + ("▌" if halves % 2 else "")

"""The funnel (core/reports/funnel.py): a known history (tests/funnel_history.py) — invites,
opens, accepts, connections, expiries, a resend, a reminder, an opt-out, a failed text,
a refused bank login, "This isn't me", a revoke, a reconnect, a bulk run — built on a
frozen clock, and every count, rate and time checked, on SQLite and PostgreSQL; the
follow-ups it offers prepared through the bulk path; a handful of statements however
many invites."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.banking import connections
from core.invitations import clients, invites
from core.platform import clock as core_clock
from core.platform.errors import InvalidInput
from core.records import BulkItem
from core.reports import funnel
from tests.conftest import T0
from tests.funnel_history import DAY, HOUR, NOT_MOBILE, NOW, REFUSED, History
from tests.helpers import statements_run

NY = core_clock.zone("America/New_York")


@pytest.fixture
def history(clock, firm, twilio, twilio_settings):
    built = History(clock, firm, twilio)
    built.build()
    return built


def names(stall: funnel.Stall) -> list[str]:
    return [n.name for n in stall.names]


def stalls(seen: funnel.Funnel) -> dict[str, int]:
    return {s.reason: s.count for s in seen.stalls}


def test_every_count_rate_and_time_of_a_known_history(history, firm):
    seen = funnel.of(firm)
    assert seen.period.label == "last 30 days"
    assert seen.period.start == NOW - timedelta(days=30) and seen.period.end > NOW
    assert seen.stages == funnel.Stages(invited=14, delivered=13, opened=8, accepted=6,
                                        connected=4)  # Old Timer is before the period
    assert [round(seen.stages.rate(s), 3) for s in funnel.STAGES] == [1, 0.929, 0.571, 0.429,
                                                                      0.286]
    # 2 h (Lee), 3 h (Ann), 1 d (Mia), 6 d 10 h (Ben: from his first invite, not the resend)
    assert seen.timing == funnel.Timing(connected=4, median=(3 * HOUR + DAY) / 2,
                                        p90=DAY + 0.7 * (6 * DAY + 10 * HOUR - DAY))
    assert stalls(seen) == {"expired": 2, "withdrawn": 1, "revoked": 1, "opted_out": 1,
                            "bank_failed": 1, "no_bank": 1, "not_delivered": 1,
                            "not_accepted": 1}
    assert seen.waiting == 1  # Kim: her link still works
    by_reason = {s.reason: s for s in seen.stalls}
    assert names(by_reason["expired"]) == ["Dan Unopened", "Ned Bulk"]
    assert names(by_reason["not_accepted"]) == ["Cat Opens"]
    assert names(by_reason["withdrawn"]) == ["Ivy NotMe"]
    assert names(by_reason["revoked"]) == ["Jon Revoked"]
    assert names(by_reason["opted_out"]) == ["Fay Stops"]
    assert names(by_reason["no_bank"]) == ["Gus Accepts"]
    assert by_reason["not_delivered"].details == ((NOT_MOBILE, 1),)
    assert by_reason["bank_failed"].details == ((REFUSED, 1),)
    assert seen.stalls[0].reason == "expired"  # most clients first


def test_by_channel_staff_and_run_each_client_under_their_first_invite(history, firm):
    by_channel = {g.label: g for g in funnel.of(firm, by="channel").groups}
    assert by_channel["SMS"].stages == funnel.Stages(9, 8, 5, 3, 3)
    assert by_channel["Email"].stages == funnel.Stages(5, 5, 3, 3, 1)  # Ben's resend by SMS
    assert by_channel["SMS"].timing == funnel.Timing(3, 3 * HOUR, 3 * HOUR + 0.8 * (DAY - 3 * HOUR))
    assert by_channel["Email"].timing == funnel.Timing(1, 6 * DAY + 10 * HOUR,
                                                       6 * DAY + 10 * HOUR)
    by_staff = {g.label: g.stages for g in funnel.of(firm, by="staff").groups}
    assert by_staff == {"ann@smith.example": funnel.Stages(7, 6, 4, 3, 3),  # (no name)
                        "Bob Baker": funnel.Stages(6, 6, 3, 2, 0),
                        "No one (the command line, or automatic)": funnel.Stages(1, 1, 1, 1, 1)}
    by_run = {g.label: g for g in funnel.of(firm, by="run").groups}
    assert by_run[f"Bulk invite #{history.run.id}"].stages == funnel.Stages(2, 2, 1, 1, 1)
    assert by_run[f"Bulk invite #{history.run.id}"].stalls == {"connected": 1, "expired": 1}
    assert by_run["Single invites"].stages.invited == 12
    assert sum((g.stages for g in by_run.values()), funnel.Stages()) == funnel.of(firm).stages


def test_a_period_of_dates_in_the_firms_zone(history, firm):
    """Monday 23 November in New York: the invites of T0 only (Lee's reconnect invite
    and Kim's came later); their outcomes as they stand now."""
    day = funnel.period("2026-11-23", "2026-11-23", now=NOW, tz=NY)
    assert (day.start, day.end) == (datetime(2026, 11, 23, 5, tzinfo=UTC),
                                    datetime(2026, 11, 24, 5, tzinfo=UTC))
    assert day.label == "Mon 23 Nov – Mon 23 Nov"
    seen = funnel.of(firm, day)
    assert seen.stages == funnel.Stages(12, 11, 7, 5, 3)
    assert seen.waiting == 0 and stalls(seen)["expired"] == 2
    nothing = funnel.of(firm, funnel.period("2026-01-01", "2026-01-31", now=NOW, tz=NY))
    assert nothing.stages == funnel.Stages() and nothing.timing == funnel.Timing()
    assert nothing.stalls == () and nothing.groups[0].stages.rate("connected") is None


def test_a_new_link_for_a_client_who_connected_counts_once(history, firm, clock):
    """Ann, connected, is sent a reconnect invite later in the period: still one client,
    still connected at her first time."""
    before = funnel.of(firm)
    ann = history.people["Ann"]
    connections.mark_broken(connections.for_client(ann)[0])
    invites.send(ann, "sms", purpose="reconnect")
    after = funnel.of(firm)
    assert after.stages == before.stages and after.timing == before.timing


@pytest.mark.parametrize("since, until, field", [
    ("30", None, "since"), ("２０d", None, "since"), ("2026-02-30", None, "since"),
    ("0d", None, "since"), ("30d", "yesterday", "until"), ("2026-11-30", "2026-11-01", "until"),
])
def test_a_period_that_isnt_one_says_which_part(since, until, field):
    with pytest.raises(InvalidInput) as problem:
        funnel.period(since, until, now=NOW, tz=NY)
    assert problem.value.field == field


def test_the_follow_ups_go_through_the_bulk_path_for_exactly_their_clients(history, firm):
    seen = funnel.of(firm)
    assert [(f.selection, f.count, f.words) for f in seen.follow_ups] == [
        ("opened_not_accepted", 1, "Remind the 1 who opened but didn't accept"),
        ("expired", 2, "Resend to the 2 whose links expired")]  # Lee's bank works again
    plan = funnel.follow_up(firm, "opened_not_accepted", seen.period, by=history.ann)
    assert _chosen(plan) == {"Cat Opens": "queued"}
    plan = funnel.follow_up(firm, "expired", seen.period, by=history.ann)
    assert _chosen(plan) == {"Dan Unopened": "queued", "Ned Bulk": "queued"}
    connections.mark_broken(connections.for_client(history.people["Mia"])[0])
    assert funnel.of(firm).follow_ups[-1].words == "Ask the 1 with a broken bank to reconnect"
    plan = funnel.follow_up(firm, "needs_reconnect", seen.period)
    assert _chosen(plan) == {"Mia Bulk": "queued"} and plan.run.purpose == "reconnect"
    with pytest.raises(InvalidInput):
        funnel.follow_up(firm, "everyone", seen.period)


def _chosen(plan) -> dict[str, str]:
    return {i.label: i.outcome for i in BulkItem.select().where(BulkItem.run == plan.run)}


def test_delivery_failures_by_reason(history, firm):
    week = funnel.failures_by_reason(firm, T0 - timedelta(days=1), NOW)
    assert [(f.reason, f.count, f.firms) for f in week] == [(NOT_MOBILE, 1, 1)]
    assert funnel.failures_by_reason(None, NOW - timedelta(days=1), NOW) == []


def test_support_sees_every_firm_at_once(history, firm):
    from core.firms import firms

    other = firms.create("Other LLP", admin_email="olga@other.example",
                         admin_password="correct horse 3")
    invites.send(clients.add(other, "Olga Client", email="olga@client.example"), "email")
    seen = funnel.across_firms(funnel.period(now=NOW))
    assert {g.label: g.stages.invited for g in seen.groups} == {"Smith & Co": 14,
                                                                "Other LLP": 1}
    assert seen.stages.invited == 15 and seen.stages.connected == 4


def test_a_handful_of_statements_however_many_invites(clock, firm):
    def counted(build: int) -> int:
        for n in range(build):
            person = clients.add(firm, f"Many {n:03} {build}", email=f"m{n}-{build}@example.com")
            invites.send(person, "email")
        with statements_run() as statements:
            seen = funnel.of(firm, by="staff")
        assert seen.stages.invited == total[0] + build
        total[0] += build
        return len(statements)

    total = [0]
    assert counted(3) == counted(60) <= 4


def test_on_postgresql_every_run_is_planned_for_its_own_firm_and_period(pg_database, clock):
    """A statement run many times from one connection is prepared; PostgreSQL then may
    plan it once for any values — for the funnel, nested loops that took 11 s at 50,000
    invites instead of 0.2. Each run must be planned for its own values."""
    from core.firms import firms

    firm = firms.create("Smith & Co", admin_email="ann@smith.example",
                        admin_password="correct horse battery")
    for n in range(4):
        invites.send(clients.add(firm, f"Client {n}", email=f"c{n}@example.com"), "email")
    for _ in range(12):
        assert funnel.of(firm).stages.invited == 4
    plans = pg_database.execute_sql(
        "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
        "WHERE statement LIKE %s", ("%reach AS%",)).fetchall()
    assert plans, "the funnel's statement was never prepared: the test shows nothing"
    assert all(generic == 0 and custom >= 1 for generic, custom in plans)

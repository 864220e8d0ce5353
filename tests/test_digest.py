"""The firm's digest (core/reports/digest.py, jobs/digest.py): due on Mondays at 9:00 in
the firm's zone (or daily, or never); exactly once per firm and week — two clocks at
9:00, two workers racing, a clock down at 9:00 and back at 9:20 — on SQLite and
PostgreSQL; and what it says, for a known history. Time travels; nothing sleeps."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from core.firms import firm_settings
from core.platform import db
from core.platform.clock import zone as clock_zone
from core.platform.errors import InvalidInput
from core.records import Firm, FirmDigest, Message
from core.reports import digest
from jobs import digest as digest_jobs
from tests.conftest import T0
from tests.funnel_history import NOT_MOBILE, NOW, History

MONDAY_9 = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)  # Mon 30 Nov, 9:00 in New York (EST)


def sent() -> list[Message]:
    return list(Message.select().where(Message.kind == "notice_digest").order_by(Message.id))


def test_due_at_nine_on_monday_in_the_firms_own_zone(clock, firm):
    clock.move_to(MONDAY_9 - timedelta(minutes=1))
    assert digest.due() == []
    clock.move_to(MONDAY_9)
    assert digest.due() == [firm.id]
    clock.move_to(MONDAY_9 + timedelta(hours=14, minutes=59))  # 23:59 in New York
    assert digest.due() == [firm.id]
    clock.move_to(MONDAY_9 + timedelta(hours=15))  # Tuesday there: that week's is over
    assert digest.due() == []
    Firm.update(timezone="Asia/Tokyo").execute()  # Mon 9:00 in Tokyo is Mon 0:00 UTC
    clock.move_to(datetime(2026, 11, 30, 0, 0, tzinfo=UTC))
    assert digest.due() == [firm.id]


def test_daily_or_never_as_the_admin_chose(clock, firm):
    assert firm.digest == "monday"
    firm_settings.set_setting(firm, "digest", "daily", actor="cli")
    clock.move_to(MONDAY_9 + timedelta(days=1))  # Tuesday 9:00
    assert digest.due() == [firm.id]
    firm_settings.set_setting(firm, "digest", "off", actor="cli")
    assert digest.due() == []
    clock.move_to(MONDAY_9 + timedelta(days=7))
    assert digest.due() == []
    assert dict(firm_settings.described(firm))["digest"] == "off"
    with pytest.raises(InvalidInput) as problem:
        firm_settings.set_setting(firm, "digest", "hourly")
    assert problem.value.field == "digest"


def test_two_clocks_at_nine_send_one_digest(clock, firm):
    clock.move_to(MONDAY_9)
    assert digest_jobs.due() == "1 digest sent"
    assert digest_jobs.due() == "0 digests sent"  # the second clock, the same minute
    clock.move_to(MONDAY_9 + timedelta(minutes=1))
    assert digest_jobs.due() == "0 digests sent"
    assert digest_jobs.send(firm.id) == "already sent"
    assert len(sent()) == 1 and FirmDigest.select().count() == 1
    assert FirmDigest.get().message_id == sent()[0].id


def test_a_clock_down_at_nine_sends_it_when_it_is_back_once(clock, firm):
    clock.move_to(MONDAY_9 + timedelta(minutes=20))  # the clock was down from 8:55 to 9:20
    assert digest_jobs.due() == "1 digest sent"
    assert sent()[0].created_at == MONDAY_9 + timedelta(minutes=20)
    clock.move_to(MONDAY_9 + timedelta(minutes=21))
    assert digest_jobs.due() == "0 digests sent"
    clock.move_to(MONDAY_9 + timedelta(days=7))  # the next Monday: the next week's
    assert digest_jobs.due() == "1 digest sent"
    assert [row.key for row in FirmDigest.select().order_by(FirmDigest.id)] == [
        f"digest-{firm.id}-2026-11-30", f"digest-{firm.id}-2026-12-07"]
    assert len(sent()) == 2


def test_two_workers_racing_write_it_once(clock, firm, monkeypatch):
    """Both find it unwritten and work it out at once; the database lets one write it."""
    clock.move_to(MONDAY_9)
    both_ready = threading.Barrier(2, timeout=10)
    composed = digest.compose

    def compose_together(*args):
        both_ready.wait()  # each has checked that it isn't written yet
        return composed(*args)

    monkeypatch.setattr(digest, "compose", compose_together)
    results = []

    def worker():
        with db.connection():
            results.append(digest.send(firm.id))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == ["already sent", "sent"]
    assert len(sent()) == 1 and FirmDigest.select().count() == 1


@pytest.fixture
def history(clock, firm, twilio, twilio_settings):
    built = History(clock, firm, twilio)
    built.build()
    return built


def test_what_the_digest_says(history, firm):
    """The week of T0 (Mon 23 – Sun 29 Nov in New York), as it stands at NOW."""
    week = digest.Slot(MONDAY_9.date(), T0.replace(hour=5), MONDAY_9.replace(hour=5),
                       clock_zone(firm.timezone))
    said = digest.compose(firm, week, NOW)
    assert said.label == "Mon 23 Nov – Sun 29 Nov"
    assert (said.invited, said.links, said.connected) == (13, 14, 4)  # Ben twice; Kim later
    assert [(g.reason, g.count, g.names) for g in said.outstanding[:2]] == [
        ("expired", 2, ["Dan Unopened", "Ned Bulk"]), ("withdrawn", 1, ["Ivy NotMe"])]
    assert said.waiting == 1 and said.broken_total == 0
    assert said.failures == [(NOT_MOBILE, 1)]
    assert [words for _, _, words in said.follow_ups] == [
        "Remind the 1 who opened but didn't accept", "Resend to the 2 whose links expired"]
    text = said.text
    assert text.startswith("Weekly digest for Smith & Co, Mon 23 Nov – Sun 29 Nov: 13 clients "
                           "invited (14 links sent), 4 banks connected or restored.")
    assert "Expired unopened (2): Dan Unopened, Ned Bulk" in text
    assert f"Not delivered: {NOT_MOBILE} (1)." in text
    assert digest.Digest.of_json(said.as_json()) == said  # as kept, as shown


def test_top_ten_names_each_then_and_n_more(clock, firm):
    from core.invitations import clients, invites

    for n in range(13):
        invites.send(clients.add(firm, f"Client {n:02}", email=f"c{n}@example.com"), "email")
    clock.move_to(MONDAY_9)  # their links lapsed on Saturday
    assert digest.send(firm.id) == "sent"
    said = digest.stored(sent()[0])
    group = said.outstanding[0]
    assert (group.reason, group.count, len(group.names), group.more) == ("expired", 13, 10, 3)
    assert group.names[0] == "Client 00"
    assert "Client 00, Client 01" in said.text and "Client 09 and 3 more" in said.text

"""The automatic reminder's decision in core (jobs drive it; see test_jobs_*)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.invitations import invites, links, reminders
from core.messaging import optouts, outbox
from core.platform import config, db, tokens
from core.records import Event, Invite, Message

DAY3 = timedelta(days=3)
NY = ZoneInfo("America/New_York")


def auto_reminders():
    return Message.select().where(Message.kind == "auto_reminder")


def test_due_exactly_on_day_three(clock, maria):
    invite = invites.send(maria, "email").invite
    clock.shift(DAY3 - timedelta(seconds=1))
    assert list(reminders.due()) == []
    assert reminders.send_automatic(invite.id).result == "not_due"
    clock.shift(timedelta(seconds=1))
    assert [i.id for i in reminders.due()] == [invite.id]
    outcome = reminders.send_automatic(invite.id)
    assert outcome.result == "sent"
    assert "Reminder: Smith & Co is waiting" in outcome.message.subject
    assert tokens.unseal(invite.token_sealed) in outbox.text(outcome.message)
    assert tokens.unseal(invite.token_sealed) not in outcome.message.html
    assert reminders.send_automatic(invite.id).result == "done"
    assert list(reminders.due()) == []
    assert auto_reminders().count() == 1


def test_racing_callers_send_one_reminder(clock, maria, settings):
    invite = invites.send(maria, "email").invite
    clock.shift(DAY3)
    db.database.close()
    results, barrier = [], threading.Barrier(8)

    def race():
        barrier.wait()
        with db.connection():
            results.append(reminders.send_automatic(invite.id).result)

    threads = [threading.Thread(target=race) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    db.database.connect(reuse_if_open=True)
    assert sorted(results).count("sent") == 1
    assert auto_reminders().count() == 1


@pytest.mark.parametrize("why", ["accepted", "revoked", "opted out", "resent"])
def test_no_reminder_when_the_client_acted_first(clock, maria, why):
    invite = invites.send(maria, "sms").invite
    clock.shift(timedelta(hours=13))  # 3 AM in New York: quiet hours do not matter here
    if why == "accepted":
        links.accept(tokens.unseal(invite.token_sealed))
    elif why == "revoked":
        invites.revoke(maria)
    elif why == "opted out":
        optouts.opt_out(maria.phone, "keyword")
    else:
        invites.resend(maria)
    clock.shift(DAY3)
    reminders.send_automatic(invite.id)
    assert auto_reminders().where(Message.invite == invite).count() == 0


def test_opted_out_reminder_is_recorded_as_skipped(clock, maria):
    invite = invites.send(maria, "email").invite
    optouts.opt_out("maria@example.com", "unsubscribe link")
    clock.shift(DAY3)
    assert reminders.send_automatic(invite.id).reason == "opted out"
    assert list(reminders.due()) == []
    skipped = Event.get(Event.kind == "reminder.skipped")
    assert skipped.detail == {"reason": "opted out"}


def test_quiet_hours_wait_for_the_morning(clock, firm, settings):
    from core.invitations import clients

    # Sent at 23:00 New York time, so the day-3 reminder is due at 23:00 too.
    clock.move_to(datetime(2026, 11, 23, 23, 0, tzinfo=NY))
    client = clients.add(firm, "Night Owl", phone="(212) 555-0140")
    invite = invites.send(client, "sms").invite
    clock.shift(DAY3)
    outcome = reminders.send_automatic(invite.id)
    assert outcome.result == "deferred"
    assert outcome.retry_at == datetime(2026, 11, 27, 8, 0, tzinfo=NY).astimezone(UTC)
    assert auto_reminders().count() == 0
    clock.move_to(outcome.retry_at)
    assert reminders.send_automatic(invite.id).result == "sent"


def test_quiet_hours_never_push_a_reminder_past_expiry(clock, firm, settings):
    from core.invitations import clients

    config.use(settings.with_(invite_ttl=timedelta(hours=6), reminder_after=timedelta(hours=1)))
    clock.move_to(datetime(2026, 11, 23, 22, 0, tzinfo=NY))
    client = clients.add(firm, "Night Owl", phone="(212) 555-0140")
    invite = invites.send(client, "sms").invite
    clock.shift(timedelta(hours=1))
    outcome = reminders.send_automatic(invite.id)
    assert outcome.result == "skipped"
    assert outcome.reason == "quiet hours last until the link expires"
    assert Invite.get_by_id(invite.id).reminded_at is not None
    assert auto_reminders().count() == 0


def test_the_client_zone_comes_from_record_then_phone_then_firm(clock, firm):
    from core.invitations import clients
    from core.messaging.quiet_hours import zone_for

    assert str(zone_for(clients.add(firm, "A", phone="(415) 555-2671"))) == "America/Los_Angeles"
    assert str(zone_for(clients.add(firm, "B", phone="(415) 555-2672",
                                    timezone="Europe/Dublin"))) == "Europe/Dublin"
    assert str(zone_for(clients.add(firm, "C", email="c@example.com"))) == "America/New_York"

"""Message text: GSM-7, segments, templates, durations and quiet-hours settings."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from core import smstext, templates
from core.config import QuietHours, Settings, parse_duration
from core.errors import ConfigError
from core.quiet_hours import next_allowed

NY = ZoneInfo("America/New_York")


@pytest.mark.parametrize("text,expected", [
    ("", ("GSM-7", 1)),
    ("a" * 160, ("GSM-7", 1)),
    ("a" * 161, ("GSM-7", 2)),
    ("a" * 306, ("GSM-7", 2)),
    ("a" * 307, ("GSM-7", 3)),
    ("€" * 80, ("GSM-7", 1)),  # extension characters count twice
    ("€" * 81, ("GSM-7", 2)),
    ("é" * 160, ("GSM-7", 1)),
    ("ë" + "a" * 69, ("UCS-2", 1)),
    ("ë" + "a" * 70, ("UCS-2", 2)),
    ("😀" * 35, ("UCS-2", 1)),  # a surrogate pair is two units
    ("😀" * 36, ("UCS-2", 2)),
])
def test_segments(text, expected):
    measured = smstext.measure(text)
    assert (measured.encoding, measured.count) == expected


def test_to_gsm7_straightens_typography_and_transliterates():
    assert smstext.to_gsm7("Zoë’s “books” — Łódź…") == "Zoe's \"books\" - odz..."
    assert smstext.is_gsm7(smstext.to_gsm7("Zoë’s “books” — Łódź… 😀 José Müller"))
    assert smstext.to_gsm7("José Müller") == "José Müller"
    assert smstext.to_gsm7("Zoë") == "Zoe"


def text(firm="Smith & Co", first="Maria", days=5, purpose="connect"):
    now = datetime(2026, 11, 23, 15, tzinfo=UTC)
    return templates.InviteText(firm=firm, first_name=first,
                                link="https://connect.ledgersync.com/i/" + "A" * 22,
                                expires_at=now + timedelta(days=days), tz=NY, purpose=purpose)


@pytest.mark.parametrize("kind", ["invite", "reminder"])
@pytest.mark.parametrize("firm,first", [
    ("Smith & Co", "Maria"),
    ("Łukasiewicz, Ó Súilleabháin & Partners Certified Public Accountants LLP", "Zoë"),
    ("Chen “Books” — Tax", "Siobhán"),
])
def test_sms_templates_stay_gsm7_within_two_segments(kind, firm, first, time_machine):
    time_machine.move_to(datetime(2026, 11, 23, 15, tzinfo=UTC), tick=False)
    rendered = templates.render(kind, "sms", text(firm, first))
    assert rendered.encoding == "GSM-7"
    assert rendered.segments <= 2
    assert smstext.is_gsm7(rendered.body)
    assert "https://connect.ledgersync.com/i/" + "A" * 22 in rendered.body
    assert "Sat 28 Nov" in rendered.body


def test_invite_sms_names_the_firm_the_client_the_date_and_stop(time_machine):
    time_machine.move_to(datetime(2026, 11, 23, 15, tzinfo=UTC), tick=False)
    body = templates.invite_sms(text()).body
    assert body.startswith("Hi Maria, Smith & Co invites you to connect your bank accounts")
    assert "(link expires Sat 28 Nov)" in body
    assert body.endswith("Reply STOP to opt out.")


def test_short_links_show_a_time_of_day(time_machine):
    time_machine.move_to(datetime(2026, 11, 23, 15, tzinfo=UTC), tick=False)
    t = templates.InviteText("Smith & Co", "Maria", "https://x/i/t",
                             datetime(2026, 11, 23, 15, 1, 30, tzinfo=UTC), NY)
    assert t.expiry() == "10:01 AM Mon 23 Nov"


def test_email_is_multipart_with_the_same_link(time_machine):
    time_machine.move_to(datetime(2026, 11, 23, 15, tzinfo=UTC), tick=False)
    rendered = templates.render("invite", "email", text(firm="Smith <b>& Co</b>"))
    assert rendered.subject == "Smith <b>& Co</b> invites you to connect your bank accounts"
    assert "https://connect.ledgersync.com/i/" + "A" * 22 in rendered.body
    assert "Smith &lt;b&gt;&amp; Co&lt;/b&gt;" in rendered.html
    assert "<b>" not in rendered.html


@pytest.mark.parametrize("value,seconds", [("5d", 432000), ("72h", 259200), ("90s", 90),
                                           ("30m", 1800), ("1d12h", 129600), (" 2D ", 172800)])
def test_durations(value, seconds):
    assert parse_duration(value) == timedelta(seconds=seconds)


@pytest.mark.parametrize("value", ["", "5", "five days", "0s", "5w", "-5d", "5d-"])
def test_bad_durations(value):
    with pytest.raises(ConfigError):
        parse_duration(value)


def test_settings_from_env():
    s = Settings.from_env({"SECRET_KEY": "k", "INVITE_TTL": "60s", "REMINDER_AFTER": "30s",
                           "QUIET_HOURS": "off", "PUBLIC_BASE_URL": "https://x.example/"})
    assert (s.invite_ttl, s.reminder_after, s.quiet_hours) == (
        timedelta(seconds=60), timedelta(seconds=30), None)
    assert s.public_base_url == "https://x.example"
    assert s.sms_provider == s.email_provider == s.notice_provider == "outbox"
    with pytest.raises(ConfigError, match="shorter than INVITE_TTL"):
        Settings.from_env({"SECRET_KEY": "k", "INVITE_TTL": "1d", "REMINDER_AFTER": "2d"})
    with pytest.raises(ConfigError, match="QUIET_HOURS"):
        Settings.from_env({"SECRET_KEY": "k", "QUIET_HOURS": "late"})


def test_quiet_hours_window():
    window = QuietHours.parse("21:00-08:00")
    assert window.contains(time(23, 0)) and window.contains(time(7, 59))
    assert not window.contains(time(8, 0)) and not window.contains(time(20, 59))
    day = QuietHours.parse("12:00-13:00")
    assert day.contains(time(12, 30)) and not day.contains(time(13, 0))


@pytest.mark.parametrize("local,expected", [
    (datetime(2026, 11, 23, 23, 0), datetime(2026, 11, 24, 8, 0)),
    (datetime(2026, 11, 24, 6, 30), datetime(2026, 11, 24, 8, 0)),
    (datetime(2026, 11, 24, 8, 0), datetime(2026, 11, 24, 8, 0)),
    (datetime(2026, 11, 24, 20, 59), datetime(2026, 11, 24, 20, 59)),
    (datetime(2026, 3, 7, 22, 0), datetime(2026, 3, 8, 8, 0)),  # across the DST change
])
def test_next_allowed_waits_for_the_morning(local, expected):
    window = QuietHours.parse("21:00-08:00")
    at = local.replace(tzinfo=NY).astimezone(UTC)
    assert next_allowed(at, NY, window) == expected.replace(tzinfo=NY).astimezone(UTC)

"""Message text: GSM-7, segments, templates, durations and quiet-hours settings."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.messaging import sms_encoding, templates
from core.messaging.quiet_hours import next_allowed
from core.platform.config import QuietHours, Settings, parse_duration
from core.platform.errors import ConfigError

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
    measured = sms_encoding.measure(text)
    assert (measured.encoding, measured.count) == expected


def test_to_gsm7_straightens_typography_and_transliterates():
    assert sms_encoding.to_gsm7("Zoë’s “books” — Łódź…") == "Zoe's \"books\" - Lodz..."
    assert sms_encoding.is_gsm7(sms_encoding.to_gsm7("Zoë’s “books” — Łódź… 😀 José Müller"))
    assert sms_encoding.to_gsm7("José Müller") == "José Müller"
    assert sms_encoding.to_gsm7("Zoë") == "Zoe"


# name → as sent in a text (None: the name is kept as written and the text goes UCS-2)
NAMES = [
    ("Łukasz Wałęsa", "Lukasz Walesa"),  # Polish
    ("Biuro Łódź", "Biuro Lodz"),
    ("Grzegorz Brzęczyszczykiewicz", "Grzegorz Brzeczyszczykiewicz"),
    ("Jürgen Müller-Straße", "Jürgen Müller-Straße"),  # German: all GSM-7 already
    ("François Lefèvre", "Francois Lefèvre"),  # French: ç isn't GSM-7, è is
    ("Nguyễn Thị Minh Khai", "Nguyen Thi Minh Khai"),  # Vietnamese
    ("Đặng Văn Lâm", "Dang Van Lam"),
    ("Şükrü Öztürk", "Sükrü Öztürk"),  # Turkish
    ("Ayşe Yıldız", "Ayse Yildiz"),
    ("Γιώργος Παπαδόπουλος", "Giorgos Papadopoylos"),  # Greek: wholly, never half Greek
    ("Иван Петров", "Ivan Petrov"),  # Cyrillic
    ("Олена Шевченко", "Olena Shevchenko"),
    ("Maria 🌸", "Maria "),  # an emoji beside a name is left out
    ("王小明", None),  # Chinese
    ("محمد العلي", None),  # Arabic
    ("דוד כהן", None),  # Hebrew
    ("김민준", None),  # Korean
    ("🌸", None),  # nothing but an emoji
]


@pytest.mark.parametrize("name,sent", NAMES)
def test_names_of_every_script(name, sent):
    assert sms_encoding.needs_ucs2(name) is (sent is None)
    if sent is not None:
        assert sms_encoding.to_gsm7(name) == sent
        assert sms_encoding.is_gsm7(sent)


@pytest.mark.parametrize("name,sent", NAMES)
def test_texts_name_the_firm_and_client_in_every_script(name, sent, time_machine):
    time_machine.move_to(datetime(2026, 11, 23, 15, tzinfo=UTC), tick=False)
    shown = name if sent is None else " ".join(sent.split())
    for kind in ("invite", "reminder"):
        for firm, first in ((name, "Maria"), ("Smith & Co", name)):
            rendered = templates.render(kind, "sms", text(firm, first))
            measured = sms_encoding.measure(rendered.body)  # counted honestly: 70 / 67 in UCS-2
            assert (rendered.encoding, rendered.segments) == (measured.encoding, measured.count)
            if sent is None and name in rendered.body:  # kept as written: UCS-2
                assert rendered.encoding == "UCS-2" and rendered.segments <= 3
            else:  # transliterated, or a shorter wording without the client's name
                assert (rendered.encoding, rendered.segments) == ("GSM-7", 1)
            if firm == name:
                assert shown in rendered.body
            elif rendered.body.startswith("Hi "):
                assert rendered.body.startswith(f"Hi {templates._short(shown, 20)}, ")
    assert templates.stopped_sms(name).body.startswith(f"You won't get more texts from {shown} via")


def test_a_name_in_chinese(time_machine):
    time_machine.move_to(datetime(2026, 11, 23, 15, tzinfo=UTC), tick=False)
    short_link = "https://ls.example.co/i/" + "A" * 22
    # greeting 王小明 would make the text UCS-2 and 2 segments: the wording without it wins,
    # GSM-7 again with the firm transliterated
    rendered = templates.invite_sms(text("Biuro Łódź “Tax”", "王小明", link=short_link))
    assert rendered.body.startswith("Biuro Lodz \"Tax\" invites you")
    assert (rendered.encoding, rendered.segments) == ("GSM-7", 1)
    reminder = templates.reminder_sms(text("Biuro Łódź “Tax”", "王小明", link=short_link))
    assert reminder.body.startswith("Reminder from Biuro Lodz \"Tax\": ")
    assert (reminder.encoding, reminder.segments) == ("GSM-7", 1)
    # a firm named in Chinese is kept as written and the whole text goes UCS-2,
    # its segments counted at 70, or 67 a part
    firm = templates.invite_sms(text("王记会计师事务所", "Zoë", link=short_link))
    assert firm.body == ("王记会计师事务所: connect your bank at " + short_link
                         + " until Sat 28 Nov 10:15 AM. Reply STOP to opt out.")
    assert (firm.encoding, firm.segments) == ("UCS-2", 2)
    assert sms_encoding.measure(firm.body).units == 127  # > 70: 2 parts of 67


def text(firm="Smith & Co", first="Maria", days=5, purpose="connect",
         link="https://connect.ledgersync.com/i/" + "A" * 22, hour=15):
    now = datetime(2026, 11, 23, hour, 15, tzinfo=UTC)
    return templates.InviteText(firm=firm, first_name=first, link=link,
                                expires_at=now + timedelta(days=days), tz=NY, purpose=purpose)


@pytest.mark.parametrize("kind", ["invite", "reminder"])
@pytest.mark.parametrize("firm,first", [
    ("Smith & Co", "Maria"),
    ("Łukasiewicz, Ó Súilleabháin & Partners Certified Public Accountants LLP", "Zoë"),
    ("Chen “Books” — Tax", "Siobhán"),
    ("F" * 40, "N" * 20),
])
def test_sms_templates_stay_gsm7_within_two_segments(kind, firm, first, time_machine):
    time_machine.move_to(datetime(2026, 11, 23, 15, tzinfo=UTC), tick=False)
    rendered = templates.render(kind, "sms", text(firm, first))
    assert rendered.encoding == "GSM-7"
    assert rendered.segments <= templates.MAX_SMS_SEGMENTS
    assert sms_encoding.is_gsm7(rendered.body)
    assert "https://connect.ledgersync.com/i/" + "A" * 22 in rendered.body
    assert "until Sat 28 Nov 10:15 AM" in rendered.body


REALISTIC_LINKS = [
    "https://ls.example.co/i/" + "A" * 22,  # 46
    "https://connect.example.com/i/" + "A" * 22,  # 52
    "https://connect.ledgersync.com/i/" + "A" * 22,  # 55
]


@pytest.mark.parametrize("link", REALISTIC_LINKS)
@pytest.mark.parametrize("purpose", ["connect", "reconnect"])
@pytest.mark.parametrize("hour", [15, 20, 3])  # 10:15 AM, 3:15 PM, 10:15 PM the day before
def test_invite_and_reminder_take_one_segment_at_realistic_lengths(link, purpose, hour,
                                                                    time_machine):
    time_machine.move_to(datetime(2026, 11, 23, hour, tzinfo=UTC), tick=False)
    firm, first = "Gonzalez-Whitfield Tax Advisor", "Maria-Alejandra Sofi"
    assert (len(firm), len(first)) == (30, 20)
    t = text(firm, first, purpose=purpose, link=link, hour=hour)
    expiry = t.expiry()
    assert expiry.startswith(("Sat 28 Nov ", "Fri 27 Nov ")) and expiry.endswith(("AM", "PM"))
    for kind in ("invite", "reminder"):
        rendered = templates.render(kind, "sms", t)
        assert (rendered.encoding, rendered.segments) == ("GSM-7", 1), rendered.body
        assert len(rendered.body) <= 160
        assert firm in rendered.body and link in rendered.body
        assert f"until {expiry}" in rendered.body
    invite = templates.invite_sms(t).body
    assert invite.endswith("Reply STOP to opt out.") and f"{purpose} your bank" in invite


def test_invite_sms_names_the_firm_the_client_the_time_and_stop(time_machine):
    time_machine.move_to(datetime(2026, 11, 23, 15, tzinfo=UTC), tick=False)
    rendered = templates.invite_sms(text())
    assert rendered.body == (
        "Hi Maria, Smith & Co invites you to connect your bank: https://connect.ledgersync.com"
        "/i/AAAAAAAAAAAAAAAAAAAAAA until Sat 28 Nov 10:15 AM. Reply STOP to opt out.")
    assert rendered.segments == 1
    reminder = templates.reminder_sms(text())
    assert reminder.body == (
        "Hi Maria, a reminder from Smith & Co: your link to connect your bank works until "
        "Sat 28 Nov 10:15 AM: https://connect.ledgersync.com/i/AAAAAAAAAAAAAAAAAAAAAA")
    assert reminder.segments == 1


def test_longer_names_fall_back_to_two_segments_with_the_full_wording(time_machine):
    time_machine.move_to(datetime(2026, 11, 23, 15, tzinfo=UTC), tick=False)
    rendered = templates.invite_sms(text("F" * 40, "N" * 20))
    assert rendered.segments == 2
    assert rendered.body.startswith("Hi " + "N" * 20 + ", " + "F" * 40 + " invites you")


def test_expiry_shows_the_day_and_the_time(time_machine):
    time_machine.move_to(datetime(2026, 11, 23, 15, tzinfo=UTC), tick=False)
    t = templates.InviteText("Smith & Co", "Maria", "https://x/i/t",
                             datetime(2026, 11, 23, 15, 1, 30, tzinfo=UTC), NY)
    assert t.expiry() == "Mon 23 Nov 10:01 AM"
    t = templates.InviteText("Smith & Co", "Maria", "https://x/i/t",
                             datetime(2026, 11, 28, 20, 15, tzinfo=UTC), NY)
    assert t.expiry() == "Sat 28 Nov 3:15 PM"


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


@pytest.mark.parametrize("value,margin", [("", 0.025), ("5%", 0.05), ("0.02", 0.02),
                                          (" 10% ", 0.10)])
def test_pace_margin(value, margin):
    assert Settings.from_env({"SECRET_KEY": "k", "PACE_MARGIN": value}).pace_margin == margin


@pytest.mark.parametrize("value", ["0%", "0.001", "60%", "wide", "%"])
def test_bad_pace_margin(value):
    with pytest.raises(ConfigError, match="PACE_MARGIN"):
        Settings.from_env({"SECRET_KEY": "k", "PACE_MARGIN": value})


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

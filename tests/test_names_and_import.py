"""Did-you-mean for a mistyped name, CSV import (';' exports, clients nobody can
invite yet), outbox times in the recipient's zone. SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest

from cli import render
from core.invitations import clients
from core.platform.errors import NotFound
from core.records import Client, Message

# --- did you mean ------------------------------------------------------------------


def test_a_typo_suggests_the_closest_name(maria):
    clients.add(maria.firm, "Acme Co", email="books@acme.example")
    with pytest.raises(NotFound) as raised:
        clients.find(maria.firm, "maira")
    assert str(raised.value) == "No client matches 'maira'. Did you mean Maria Gonzalez?"


@pytest.mark.parametrize("typo", ["gonzales", "Maria Gonzales", "gonzales maria", "jonzalez"])
def test_a_typo_in_either_name_or_word_order_still_suggests(maria, typo):
    with pytest.raises(NotFound, match="Did you mean Maria Gonzalez\\?"):
        clients.find(maria.firm, typo)


@pytest.mark.parametrize("nonsense", ["qzxv", "Globex", "zzzzzzzz", "x" * 5000])
def test_nonsense_suggests_nothing(maria, nonsense):
    with pytest.raises(NotFound) as raised:
        clients.find(maria.firm, nonsense)
    assert "Did you mean" not in str(raised.value)
    assert str(raised.value).startswith("No client matches '")


def test_at_most_three_suggestions_best_first(firm):
    for name in ["John Smith", "Jane Smith", "Anna Smith", "Bob Smith", "Smith and Co",
                 "Carl Smyth"]:
        clients.add(firm, name, email=f"{name.split()[0].lower()}@example.com")
    with pytest.raises(NotFound) as raised:
        clients.find(firm, "smiht")  # five Smiths are as close as each other
    suggested = str(raised.value).split("Did you mean ", 1)[1].rstrip("?")
    assert len(suggested.replace(" or ", ", ").split(", ")) == 3
    with pytest.raises(NotFound) as raised:
        clients.find(firm, "jhon smith")
    assert str(raised.value) == ("No client matches 'jhon smith'. "
                                 "Did you mean John Smith or Jane Smith?")


def test_suggestions_stay_within_the_firm(maria):
    from core.firms import firms

    other = firms.create("Other LLP", admin_email="o@other.example", admin_password="x" * 12)
    clients.add(other, "Mario Gonzalez", email="mario@example.com")
    assert clients.suggest(maria.firm, "maira") == ["Maria Gonzalez"]
    assert clients.suggest(other, "maira gonzales") == ["Mario Gonzalez"]


def test_phone_and_email_misses_suggest_nothing(maria):
    with pytest.raises(NotFound) as raised:
        clients.find(maria.firm, "maria@example.org")
    assert "Did you mean" not in str(raised.value)
    with pytest.raises(NotFound) as raised:
        clients.find(maria.firm, "(212) 555-0199")
    assert "Did you mean" not in str(raised.value)


# --- CSV import ---------------------------------------------------------------------


SEMICOLONS = """Name;Email;Phone;Banks
Good Row Ltd;good@example.com;(415) 555-2673;Chase
Nobody Reachable;;;Ally
Bad Phone Inc;bad@example.com;555-1234;
"""


def test_semicolon_separated_export(firm):
    report = clients.import_csv(firm, SEMICOLONS)
    outcomes = [(r.line, r.name, r.outcome) for r in report.rows]
    assert outcomes == [(2, "Good Row Ltd", "added"), (3, "Nobody Reachable", "added"),
                        (4, "Bad Phone Inc", "rejected")]
    good = clients.find(firm, "good row")
    assert (good.email, good.phone, good.banks) == ("good@example.com", "+14155552673",
                                                     ["Chase"])


def test_a_client_with_neither_phone_nor_email_is_flagged(firm):
    text = "name,email,phone,banks\nNobody Reachable,,,Chase;Ally\nReachable,r@example.com,,\n"
    report = clients.import_csv(firm, text)
    first, second = report.rows
    assert (first.outcome, first.reason) == (
        "added", "can't be invited until a phone or email is set")
    assert (second.outcome, second.reason) == ("added", "")
    assert report.summary == "2 added"
    # A comma file whose banks hold ';' is still read as comma-separated.
    assert Client.get(Client.name == "Nobody Reachable").banks == ["Chase", "Ally"]


def test_the_flag_shows_in_the_slack_report(firm):
    from bot import views

    report = clients.import_csv(firm, "name;email;phone\nNobody Reachable;;\n")
    assert "can't be invited until a phone or email is set" in str(views.import_report(report))


def test_a_single_column_file_still_imports(firm):
    report = clients.import_csv(firm, "name\nSolo Trader\n")
    assert [(r.outcome, r.reason) for r in report.rows] == [
        ("added", "can't be invited until a phone or email is set")]


# --- outbox times -------------------------------------------------------------------


def _outbox_message(firm, client, to_addr) -> Message:
    return Message.create(firm=firm, client=client, channel="sms", kind="invite",
                          to_addr=to_addr, body="Hello", status="delivered",
                          provider="outbox")


def test_outbox_times_are_in_the_recipients_zone_and_labelled(firm, clock):
    ny = clients.add(firm, "Maria Gonzalez", phone="(212) 555-0134")
    la = clients.add(firm, "Leo Park", phone="(415) 555-2671", timezone="America/Los_Angeles")
    shown = [render.message(_outbox_message(firm, client, address)) for client, address in
             ((ny, ny.phone), (la, la.phone), (None, "ann@smith.example"))]
    # T0 is 15:00 UTC on Mon 23 Nov 2026.
    assert " Mon 23 Nov, 10:00 AM EST (15:00 UTC)  SMS to +12125550134" in shown[0]
    assert " Mon 23 Nov, 7:00 AM PST (15:00 UTC)  SMS to +14155552671" in shown[1]
    # Email: the firm's zone.
    assert " Mon 23 Nov, 10:00 AM EST (15:00 UTC)  SMS to ann@smith.example" in shown[2]
    assert all(re.search(r"\d{1,2}:\d\d [AP]M [A-Z]{3,4} \(\d\d:\d\d UTC\) ", text)
               for text in shown)

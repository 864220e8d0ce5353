"""Clients: finding by name, phone and email; CSV import. SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from core.invitations import clients
from core.platform.errors import Ambiguous, InvalidInput, NotFound, Refused
from core.records import Client, Event


@pytest.fixture
def acme(firm):
    return clients.add(firm, "Acme Co", phone="+1 (415) 555-2671", email="Books@Acme.example")


@pytest.mark.parametrize("query", ["acme", "ACME Co.", "Acmé", "  acme   co ", "Acme-Co"])
def test_name_search_is_case_accent_and_punctuation_insensitive(acme, query):
    assert clients.find(acme.firm, query).id == acme.id


def test_two_smiths_come_back_as_candidates(firm):
    john = clients.add(firm, "John Smith", phone="4155552672")
    jane = clients.add(firm, "Jane Smith", email="jane@example.com")
    with pytest.raises(Ambiguous) as raised:
        clients.find(firm, "smith")
    assert {c.id for c in raised.value.candidates} == {john.id, jane.id}
    assert clients.find(firm, "jane smith").id == jane.id
    with pytest.raises(Ambiguous):
        clients.find(firm, "j smith")


@pytest.mark.parametrize("query", ["(415) 555-2671", "415.555.2671", "+14155552671",
                                   "1 415 555 2671", "4155552671"])
def test_find_by_phone_in_any_common_format(acme, query):
    assert clients.find(acme.firm, query).id == acme.id


def test_find_by_email_ignores_case_of_domain(acme):
    assert acme.email == "Books@acme.example"
    assert clients.find(acme.firm, "Books@ACME.example").id == acme.id


def test_unknown_and_empty_queries(acme):
    with pytest.raises(NotFound, match="No client matches 'Globex'"):
        clients.find(acme.firm, "Globex")
    with pytest.raises(InvalidInput):
        clients.find(acme.firm, "!!!")
    with pytest.raises(NotFound):
        clients.find(acme.firm, "x" * 5000)


def test_another_firms_clients_are_invisible(acme):
    from core.firms import firms

    other = firms.create("Other LLP", admin_email="o@other.example", admin_password="x" * 12)
    with pytest.raises(NotFound):
        clients.find(other, "acme")
    with pytest.raises(NotFound):
        clients.get(other, acme.id)
    assert clients.search(other, "") == []


def test_add_rejects_bad_input_and_duplicates(firm, acme):
    with pytest.raises(InvalidInput, match="not a valid phone number"):
        clients.add(firm, "Bad Phone", phone="555-1234")
    with pytest.raises(InvalidInput, match="not an email"):
        clients.add(firm, "Bad Mail", email="nope@")
    with pytest.raises(InvalidInput, match="needs a name"):
        clients.add(firm, " ... ")
    with pytest.raises(Refused, match="already a client"):
        clients.add(firm, "ACME co.")
    assert Client.select().count() == 1


def test_update_records_what_changed(acme):
    clients.update(acme, phone="(415) 555-2699", banks="Chase; Ally")
    fresh = acme.refreshed()
    assert fresh.phone == "+14155552699" and fresh.banks == ["Chase", "Ally"]
    event = Event.select().where(Event.kind == "client.updated").get()
    assert event.detail["fields"] == ["banks", "phone"]


CSV = """Name,Email,Phone,Banks
Good Row Ltd,good@example.com,(415) 555-2673,Chase;Bank of America
Bad Phone Inc,bad@example.com,555-1234,
,nameless@example.com,4155552674,
Good Row Ltd.,dup@example.com,4155552675,
Second Good,second@example.com,,Ally
Acme Co,,4155552676,Wells Fargo
"""


def test_csv_import_reports_row_by_row(acme):
    report = clients.import_csv(acme.firm, CSV)
    outcomes = [(r.line, r.outcome, r.reason) for r in report.rows]
    assert outcomes[0] == (2, "added", "")
    assert outcomes[1][:2] == (3, "rejected") and "not a valid phone number" in outcomes[1][2]
    assert outcomes[2] == (4, "rejected", "A client needs a name")
    assert outcomes[3] == (5, "rejected", "duplicate of row 2")
    assert outcomes[4] == (6, "added", "")
    assert outcomes[5] == (7, "updated", "")
    assert report.summary == "2 added, 1 updated, 3 rejected"
    good = clients.find(acme.firm, "good row")
    assert (good.phone, good.banks) == ("+14155552673", ["Chase", "Bank of America"])
    assert acme.refreshed().phone == "+14155552676"
    assert Client.select().count() == 3


def test_csv_import_needs_a_name_column(firm):
    with pytest.raises(InvalidInput, match="'name' column"):
        clients.import_csv(firm, "email,phone\na@b.example,4155552671\n")


def test_reimporting_the_same_file_changes_nothing(firm):
    clients.import_csv(firm, CSV)
    again = clients.import_csv(firm, CSV)
    assert again.count("added") == 0
    assert again.count("unchanged") == 3

"""`GET /api/v1/funnel` through the real Flask app, with a token exchanged for a staff
member's email and password: the token's firm only, the period and groups as asked, a
bad parameter a 400 naming it, and in the OpenAPI description."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.firms import firms
from core.invitations import clients, invites, links
from core.platform import tokens
from tests.api_fixtures import token_for


@pytest.fixture
def invited(firm, clock):
    maria = clients.add(firm, "Maria Gonzalez", phone="(212) 555-0134")
    sent = invites.send(maria, "sms").invite
    invites.send(clients.add(firm, "Acme Co", email="books@acme.example"), "email")
    clock.shift(timedelta(hours=2))
    links.accept(tokens.unseal(sent.token_sealed))
    return firm


def test_the_firms_funnel_as_json(api, invited):
    reply = api.get("/api/v1/funnel?since=30d&by=channel", headers=token_for(api))
    assert reply.status_code == 200, reply.json
    body = reply.json
    assert body["counted"] == "clients" and body["by"] == "channel"
    assert body["period"]["label"] == "last 30 days"
    assert body["stages"] == {"invited": 2, "delivered": 2, "opened": 1, "accepted": 1,
                              "connected": 0}
    assert body["rates"]["accepted"] == 0.5 and body["in_progress"] == 1
    assert body["time_to_connect"] == {"connected": 0, "median_seconds": None,
                                       "p90_seconds": None}
    assert body["stalls"] == [{"reason": "no_bank", "words": "Accepted, no bank connected",
                               "count": 1, "details": [],
                               "clients": [{"id": body["stalls"][0]["clients"][0]["id"],
                                            "name": "Maria Gonzalez"}]}]
    assert {g["label"]: g["stages"]["invited"] for g in body["groups"]} == {"SMS": 1,
                                                                           "Email": 1}


def test_only_the_tokens_firm(api, invited):
    other = firms.create("Other LLP", admin_email="olga@other.example",
                         admin_password="correct horse 3")
    invites.send(clients.add(other, "Olga Client", email="olga@client.example"), "email")
    ours = api.get("/api/v1/funnel", headers=token_for(api)).json
    theirs = api.get("/api/v1/funnel", headers=token_for(api, "olga@other.example",
                                                         "correct horse 3")).json
    assert (ours["stages"]["invited"], theirs["stages"]["invited"]) == (2, 1)
    assert api.get("/api/v1/funnel").status_code == 401


@pytest.mark.parametrize("query, parameter", [
    ("since=30x", "since"), ("since=2026-11-31", "since"), ("until=tomorrow", "until"),
    ("by=colour", "by"), ("since=2026-11-20&until=2026-11-01", "until"),
])
def test_a_bad_parameter_is_a_400_naming_it(api, invited, query, parameter):
    reply = api.get(f"/api/v1/funnel?{query}", headers=token_for(api))
    assert reply.status_code == 400 and reply.json["error"]["parameter"] == parameter


def test_the_funnel_is_described(api):
    spec = api.get("/api/v1/openapi.json").json
    operation = spec["paths"]["/funnel"]["get"]
    assert operation["operationId"] == "getFunnel"
    assert {p["name"] for p in operation["parameters"]} == {"since", "until", "by"}

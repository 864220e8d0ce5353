"""The read API under /api/v1/, through the real Flask app: tokens exchanged for a staff
member's email and password (✅ / ❌ with the seed's reasons), scoped to their firm
and role, revocable, rate-limited; keyset pages stable while transactions arrive; the
OpenAPI description."""

from __future__ import annotations

import base64
from datetime import date, timedelta
from decimal import Decimal

import pytest

from core.banking import bank_sync, banks, connections
from core.firms import api_tokens, firms
from core.invitations import clients
from core.platform import config
from core.records import ApiToken, BankAccount, BankTransaction, Event, Firm
from tests.api_fixtures import PASSWORD, exchange, token_for


@pytest.fixture
def maria_banked(firm):
    maria = clients.add(firm, "Maria Gonzalez", phone="(212) 555-0134", email="m@example.com")
    assert connections.add(maria, "chase", "user_good", "pass_good").status == "connected"
    return maria


# --- the exchange: the seed's green check or red X ------------------------------------------


def test_a_token_is_shown_once_and_only_its_digest_kept(api, firm):
    reply = exchange(api, label="Accounting CS")
    assert reply.status_code == 201
    body = reply.json
    assert body["ok"] is True and body["result"] == \
        "✅ Connected as ann@smith.example at Smith & Co (admin)"
    assert body["token"].startswith("lsk_") and len(body["token"]) == 47
    assert body["warning"].startswith("No clients set up yet")
    stored = ApiToken.get()
    assert stored.digest == api_tokens.digest(body["token"]) and body["token"] not in \
        str(list(ApiToken.select().tuples()))
    assert stored.label == "Accounting CS" and stored.hint == body["token"][:8]


@pytest.mark.parametrize("case, status, reason", [
    ("wrong password", 401, "Wrong email or password"),
    ("unknown email", 401, "Wrong email or password"),
    ("suspended", 403, "Your LedgerSync account is suspended"),
    ("lapsed", 403, "Your LedgerSync subscription is not active"),
])
def test_a_refused_exchange_says_why_and_how_to_fix_it(api, firm, case, status, reason):
    email, password = "ann@smith.example", PASSWORD
    if case == "wrong password":
        password = "wrong horse battery"
    elif case == "unknown email":
        email = "nobody@smith.example"
    elif case == "suspended":
        Firm.update(suspended=True).execute()
    else:
        Firm.update(subscription_status="past_due").execute()
    reply = exchange(api, email, password)
    assert reply.status_code == status
    assert reply.json["ok"] is False and reply.json["result"] == f"❌ {reason}"
    assert reply.json["fix"] and "token" not in reply.json
    assert not ApiToken.select().exists()


def test_five_failures_pause_the_exchange(api, firm):
    for _ in range(5):
        assert exchange(api, password="wrong horse battery").status_code == 401
    paused = exchange(api)  # even the right password, for a while
    assert paused.status_code == 429 and paused.json["code"] == "too_many_tries"
    assert paused.headers["Retry-After"] == "900"


# --- reading, within the firm and the role ---------------------------------------------------


def test_clients_accounts_and_transactions(api, maria_banked):
    auth = token_for(api)
    listed = api.get("/api/v1/clients", headers=auth).json
    assert listed["next_cursor"] is None
    assert listed["data"] == [{"id": maria_banked.id, "name": "Maria Gonzalez",
                               "email": "m@example.com", "phone": "+12125550134",
                               "connections": [{"id": 1, "institution": "Chase",
                                                "status": "active"}]}]
    accounts = api.get(f"/api/v1/clients/{maria_banked.id}/accounts", headers=auth).json["data"]
    assert [a["name"] for a in accounts] == ["Checking", "Savings"]
    assert accounts[0]["institution"] == "Chase" and accounts[0]["balance"].count(".") == 1
    page = api.get(f"/api/v1/accounts/{accounts[0]['id']}/transactions?limit=5",
                   headers=auth).json
    assert len(page["data"]) == 5 and page["next_cursor"]
    first = page["data"][0]
    assert set(first) == {"id", "account_id", "date", "name", "merchant_name", "category",
                          "amount", "currency", "pending"}
    dates = [t["date"] for t in page["data"]]
    assert dates == sorted(dates, reverse=True)


def test_another_firms_client_account_and_transactions_are_not_found(api, maria_banked):
    other = firms.create("Other LLP", admin_email="olga@other.example", admin_password=PASSWORD)
    auth = token_for(api, "olga@other.example")
    account = BankAccount.select().first()
    for path in (f"/api/v1/clients/{maria_banked.id}/accounts",
                 f"/api/v1/accounts/{account.id}/transactions",
                 "/api/v1/clients/999999/accounts", "/api/v1/accounts/999999/transactions"):
        reply = api.get(path, headers=auth)
        assert reply.status_code == 404, path
        assert reply.json["error"]["code"] == "not_found"
    assert api.get("/api/v1/clients", headers=auth).json["data"] == []
    assert other.id != maria_banked.firm_id


def test_no_token_a_bad_one_and_a_revoked_one_are_401(api, firm):
    assert api.get("/api/v1/clients").status_code == 401
    assert api.get("/api/v1/clients").headers["WWW-Authenticate"].startswith("Bearer")
    assert api.get("/api/v1/clients", headers={"Authorization": "Bearer lsk_nope"}
                   ).status_code == 401
    auth = token_for(api)
    assert api.get("/api/v1/clients", headers=auth).status_code == 200
    token_id = ApiToken.get().id
    assert api.delete(f"/api/v1/tokens/{token_id}", headers=auth).status_code == 200
    revoked = api.get("/api/v1/clients", headers=auth)
    assert revoked.status_code == 401 and "revoked" in revoked.json["error"]["message"]


def test_a_password_change_ends_older_tokens_and_a_lapsed_firm_is_403(clock, api, firm):
    auth = token_for(api)
    clock.shift(timedelta(minutes=1))
    firms.set_password(firms.member(firm, "ann@smith.example"), "another horse battery")
    assert api.get("/api/v1/clients", headers=auth).status_code == 401
    auth = token_for(api, password="another horse battery")
    Firm.update(subscription_status="canceled").execute()
    refused = api.get("/api/v1/clients", headers=auth)
    assert refused.status_code == 403 and "subscription is not active" in \
        refused.json["error"]["message"]


def test_admins_list_and_revoke_the_firms_tokens_staff_only_their_own(api, firm):
    firms.add_staff(firm, "bob@smith.example", PASSWORD, role="staff")
    admin, staff = token_for(api), token_for(api, "bob@smith.example")
    assert len(api.get("/api/v1/tokens", headers=admin).json["data"]) == 2
    own = api.get("/api/v1/tokens", headers=staff).json["data"]
    assert [t["staff"] for t in own] == ["bob@smith.example"]
    admins = ApiToken.get(ApiToken.staff == firms.member(firm, "ann@smith.example"))
    forbidden = api.delete(f"/api/v1/tokens/{admins.id}", headers=staff)
    assert forbidden.status_code == 403
    assert api.delete(f"/api/v1/tokens/{own[0]['id']}", headers=admin).status_code == 200
    assert api.get("/api/v1/clients", headers=staff).status_code == 401
    assert Event.select().where(Event.kind == "staff.api_token_revoked").count() == 1


# --- pages stable while transactions arrive -------------------------------------------------


def test_paging_is_stable_while_transactions_arrive(api, maria_banked):
    auth = token_for(api)
    account = BankAccount.get(BankAccount.name == "Checking")
    before = {t.id for t in BankTransaction.select().where(BankTransaction.account == account)}
    url = f"/api/v1/accounts/{account.id}/transactions?limit=7"
    seen, page = [], api.get(url, headers=auth).json
    seen += [t["id"] for t in page["data"]]
    arrive(account, [date(2026, 11, 23), date(2026, 10, 1), date(2026, 11, 1)])
    while page["next_cursor"]:
        page = api.get(f"{url}&cursor={page['next_cursor']}", headers=auth).json
        seen += [t["id"] for t in page["data"]]
    assert len(seen) == len(set(seen))  # nothing twice
    assert before <= set(seen)  # nothing that was there is missed
    bad = api.get(f"{url}&cursor=not-a-cursor", headers=auth)
    assert bad.status_code == 400 and bad.json["error"]["code"] == "bad_request"


def arrive(account: BankAccount, days: list[date]) -> None:
    """New transactions land mid-paging (the sync's own upsert), newer and older."""
    connection = account.connection
    changes = bank_sync.Changes(added=[
        banks.Txn(f"late-{n}", account.provider_account_id, day, "LATE", Decimal("1.00"))
        for n, day in enumerate(days)], cursor=f"{connection.sync_cursor}-later")
    assert bank_sync.apply(connection, connection.sync_cursor, changes).result == "synced"


# --- rate limit and the OpenAPI description ---------------------------------------------------


def test_requests_over_the_rate_are_429_with_retry_after(api, firm):
    auth = token_for(api)
    config.use(config.settings().with_(api_rate=3))
    api.application.config["LEDGERSYNC"] = config.settings()
    codes = [api.get("/api/v1/clients", headers=auth).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = api.get("/api/v1/clients", headers=auth)
    assert int(limited.headers["Retry-After"]) <= 60 and limited.json["error"]["code"] == \
        "rate_limited"


def test_the_openapi_description_is_valid_and_matches_the_routes(api):
    from openapi_spec_validator import validate

    spec = api.get("/api/v1/openapi.json").json
    validate(spec)
    described = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}
    routes = {(rule.rule.removeprefix("/api/v1").replace("<int:", "{").replace(">", "}"), m)
              for rule in api.application.url_map.iter_rules()
              if rule.rule.startswith("/api/v1/")
              for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert described == routes
    assert spec["servers"] == [{"url": "https://connect.example.com/api/v1"}]


# --- odd input: a 400 naming the parameter, never a 500 ---------------------------------------


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize("where, query, parameter", [
    ("clients", f"cursor={b64('²')}", "cursor"),  # '²'.isdigit(), but int('²') raises
    ("clients", f"cursor={b64('9' * 25)}", "cursor"),  # no row id is that large
    ("transactions", f"cursor={b64('2024-01-01|²')}", "cursor"),
    ("transactions", f"cursor={b64('٢٠٢٤-٠١-٠١|٣')}", "cursor"),
    ("transactions", "since=²d", "since"),
    ("transactions", "since=٣٠d", "since"),
    ("transactions", "since=2026-02-30", "since"),
    ("clients", "limit=²", "limit"),
])
def test_an_odd_paging_parameter_is_a_400_naming_it(api, maria_banked, where, query, parameter):
    auth = token_for(api)
    account = BankAccount.get(BankAccount.name == "Checking")
    path = {"clients": "/api/v1/clients",
            "transactions": f"/api/v1/accounts/{account.id}/transactions"}[where]
    reply = api.get(f"{path}?{query}", headers=auth)
    assert reply.status_code == 400, reply.text
    assert reply.json["error"]["code"] == "bad_request"
    assert reply.json["error"]["parameter"] == parameter
    assert api.get(f"{path}?since=30d&limit=2", headers=auth).status_code == 200


@pytest.mark.parametrize("body", ["[" * 5000 + "]" * 5000, '{"email":' * 5000 + "1" + "}" * 5000,
                                  '"ann@smith.example"', "not json"])
def test_a_token_exchange_that_is_not_a_json_object_is_a_400(api, firm, body):
    reply = api.post("/api/v1/tokens", data=body, content_type="application/json")
    assert reply.status_code == 400
    assert reply.json["error"]["parameter"] == "body"
    assert not ApiToken.select().exists()
    assert exchange(api).status_code == 201  # the same address, with a JSON object


def test_an_id_in_the_path_is_ascii_digits(api, maria_banked):
    auth = token_for(api)
    assert api.get(f"/api/v1/clients/{maria_banked.id}/accounts", headers=auth).status_code == 200
    arabic_indic = "".join(chr(0x660 + int(d)) for d in str(maria_banked.id))  # int() reads it
    for odd in (arabic_indic, "9" * 25):
        reply = api.get(f"/api/v1/clients/{odd}/accounts", headers=auth)
        assert reply.status_code == 404, odd

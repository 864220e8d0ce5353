"""Odd input never gets a 500. Every route of the app — read from its url_map, so a new
route is covered without touching this file — with every blueprint registered (Slack in
OAuth mode, Twilio, Plaid): odd path values (non-ASCII, Arabic-Indic digits, '²', a NUL,
3,000 characters, huge numbers), odd query strings, 1 MB bodies, deeply nested JSON, odd
bytes and wrong content types — signed in (a client's session with its CSRF token, an
API token), and the odd paths anonymous too. Then a few correctly signed but odd Slack,
Twilio and Plaid requests. Every answer must be below 500. No random draws: the same
requests every run."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from urllib.parse import quote, urlencode

import jwt
import pytest

import wiring
from core.firms import api_tokens, firms
from core.invitations import clients, invites
from core.messaging import optouts, outbound
from core.platform import config, tokens
from tests.conftest import make_settings
from tests.helpers import csrf
from tests.slack_requests import SECRET, signed
from tests.slack_standin import TEAM
from tests.twilio_standin import AUTH_TOKEN, FROM_NUMBER

PUBLIC = "https://connect.example.com"
NESTED = "[" * 5000 + "]" * 5000
DEEP_OBJECT = '{"a":' * 5000 + "1" + "}" * 5000
MEGABYTE = 1024 * 1024


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


# Path values, already in URL form (quoted, or raw escapes a browser might send).
ODD_SEGMENTS = [quote(v, safe="") for v in (
    "é", "٣", "²", "\u202e", "x" * 3000, "-1", "99999999999999999999999", "..",
)] + ["%00", "%FF", "a%2Fb"]
ODD_QUERIES = [
    f"cursor={b64('²')}", f"cursor={b64('2024-01-01|²')}", f"cursor={b64('٢٠٢٤-٠١-٠١|٣')}",
    f"cursor={b64('2024-01-01|99999999999999999999999')}",
    f"cursor={b64('99999999999999999999999')}", "cursor=%FF%FE", "cursor=" + "A" * 5000,
    "since=²d", "since=٣٠d", "since=99999999999999999999d", "since=2024-13-45",
    "since=" + quote("٢٠٢٤-٠١-٠١"), "limit=²", "limit=٣", "limit=99999999999999999999999",
    "lang=%C3%A9&q=%00%C2%B2&code=%FF&state=%00&error=%00&client=%C2%B2&a=%C0%AF",
    "lang=" + "%00" * 100 + "&q=" + "é" * 500 + "&state=" + "%C3%A9" * 300,
]
RAW_QUERIES = [b"a=\xff\xfe", b"cursor=\xc2\xb2", b"since=\xd9\xa3d", b"\x00=\x00"]
ODD_HEADERS = [
    {"Accept-Language": "²,é;q=²", "Accept": "application/json;q=²", "If-Modified-Since": "²",
     "Range": "bytes=²-٣"},
    {"Authorization": "Bearer lsk_é²"}, {"Authorization": "Bearer " + "x" * 5000},
    {"Cookie": "ls_session=é²; slack-app-oauth-state=%00"},
    {"X-Slack-Request-Timestamp": "²", "X-Slack-Signature": "v0=é"},
    {"X-Twilio-Signature": "é²", "Plaid-Verification": "é.².٣"},
    {"Sec-Fetch-Site": "é", "Origin": "https://é.example:²"},
    {"Content-Type": "application/json; charset=é"},
]


def odd_bodies(form_token: str | None) -> list[tuple[str | None, bytes | str]]:
    fields = {"email": "é²٣@x", "password": "²", "label": "\x00", "code": "²٣４",
              "address": "٣٣٣", "client": "²", "username": "é", "challenge": "²",
              "List-Unsubscribe": "One-Click", "payload": NESTED}
    if form_token:
        fields["csrf_token"] = form_token
    return [
        ("application/json", NESTED), ("application/json", DEEP_OBJECT),
        ("application/json", b"\xff\xfe\x00{"), ("application/json", '"text"'),
        ("application/json", "1e999999"), ("application/json", "NaN"),
        ("application/json", json.dumps({"email": ["é"], "password": {"a": 1}, "label": 1})),
        ("application/x-www-form-urlencoded", urlencode(fields)),
        ("application/x-www-form-urlencoded", b"\xff\xfe=%ff&%00=\x00&email=\xc2\xb2"),
        ("application/x-www-form-urlencoded", "a=" + "x" * (MEGABYTE - 2)),  # 1 MB, just
        ("application/x-www-form-urlencoded", "a=" + "x" * MEGABYTE),  # and just over
        ("application/json", json.dumps({"email": "x" * (MEGABYTE - 20)})),
        ("multipart/form-data", b"no boundary"),
        ("multipart/form-data; boundary=b", b'--b\r\nContent-Disposition: form-data; '
                                            b'name="\xff"\r\n\r\n\xff\r\n--b--'),
        ("text/xml", NESTED), (None, b"\x00" * 1000), ("application/json", urlencode(fields)),
    ]


# --- the app with everything configured, and someone signed in ------------------------------


@pytest.fixture
def everything(sqlite_database, slack, twilio_settings, plaid_settings, redis_conn):
    from web import create_app

    settings = config.settings().with_(
        slack_signing_secret=SECRET, slack_client_id="1111.2222",
        slack_client_secret="oauth-client-secret", slack_api_url=slack.api_url,
        redis_url=make_settings("sqlite://").redis_url, api_rate=100_000)
    app = create_app(settings)
    wiring.inline()
    outbound.reset_senders()
    return app


@pytest.fixture
def people(everything):
    firm = firms.create("Smith & Co", admin_email="ann@smith.example",
                        admin_password="correct horse 1")
    maria = clients.add(firm, "Maria Gonzalez", phone="2125550134", email="maria@example.com")
    invite = invites.send(maria, "sms").invite
    return {"invite": tokens.unseal(invite.token_sealed),
            "unsubscribe": optouts.unsubscribe_token("maria@example.com"),
            "api": api_tokens.exchange("ann@smith.example", "correct horse 1").token}


def signed_in(app, people):
    """A test client with a client's session (the invite accepted) and an API token."""
    web = app.test_client()
    page = web.get(f"/i/{people['invite']}")
    accepted = web.post(f"/i/{people['invite']}/accept", data={"csrf_token": csrf(page)})
    assert accepted.status_code == 302, accepted.text
    return web, csrf(web.get("/i/account")), {"Authorization": f"Bearer {people['api']}"}


# --- the sweep ---------------------------------------------------------------------------------


class Sweep:
    """Sends requests, keeps every answer of 500 or more (with how to reproduce it).
    Each comes from its own address (no throttle hides a handler) with a Slack timestamp
    that is a number (so /slack/events reads the body, as Bolt does, before refusing
    the signature)."""

    def __init__(self, web, headers: dict | None = None):
        self.web, self.failures, self.sent = web, [], 0
        self.headers = {"X-Slack-Request-Timestamp": str(int(time.time())),
                        "X-Slack-Signature": "v0=" + "0" * 64, **(headers or {})}
        self.addresses = iter(range(1, 10**6))

    def send(self, method: str, url: str, *, query: bytes | None = None, body=None,
             content_type: str | None = None, headers: dict | None = None) -> None:
        n = next(self.addresses)
        environ = {"REMOTE_ADDR": f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"}
        if query is not None:  # raw bytes, as a server passes them on (latin-1)
            environ["QUERY_STRING"] = query.decode("latin-1")
        reply = self.web.open(url, method=method, data=body, content_type=content_type,
                              headers={**self.headers, **(headers or {})},
                              environ_overrides=environ)
        self.sent += 1
        if reply.status_code >= 500:
            shown = body if body is None or len(body) < 120 else f"{body[:60]!r}…({len(body)})"
            self.failures.append((reply.status_code, method, url, query, content_type, shown,
                                  headers))


def paths(rule, people: dict) -> tuple[str, list[str]]:
    """A plain path for the rule (real tokens where it takes one), and odd ones."""
    names = re.findall(r"<(?:[^:>]+:)?([^>]+)>", rule.rule)
    plain = {"token": people["unsubscribe"] if rule.rule.startswith("/unsubscribe")
             else people["invite"], "filename": "client.css"}

    def fill(values: dict) -> str:
        return re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: values.get(m.group(1), "1"), rule.rule)

    odd = [fill(dict.fromkeys(names, value)) for value in ODD_SEGMENTS] if names else []
    if "token" in names:
        real = plain["token"]
        odd += [fill({"token": quote(real + suffix, safe="")})
                for suffix in (".é", "٣", "²", "\x00")]
    return fill(plain), odd


FORM = "application/x-www-form-urlencoded"


def sweep_rule(sweep: Sweep, rule, people: dict, form_token: str | None, *,
               deep: bool = True) -> None:
    """Odd path values with each of the rule's methods; `deep`: odd bodies to its POST,
    odd query strings to its GET, odd headers too."""
    plain, odd = paths(rule, people)
    methods = [m for m in ("GET", "HEAD", "POST", "DELETE") if m in rule.methods]
    for url in odd:
        for method in methods:
            sweep.send(method, url)
    if not deep:
        return
    if "POST" in methods:
        for content_type, body in odd_bodies(form_token):
            sweep.send("POST", plain, body=body, content_type=content_type)
    if "GET" in methods:
        for query in ODD_QUERIES:
            sweep.send("GET", f"{plain}?{query}")
        sweep.send("HEAD", f"{plain}?{ODD_QUERIES[1]}")
    for query in RAW_QUERIES:
        sweep.send(methods[0], plain, query=query, body="a=1", content_type=FORM)
    for headers in ODD_HEADERS:
        sweep.send(methods[-1], plain, body="a=1", content_type=FORM, headers=headers)


ENDS_THE_SESSION = {"client.sign_out", "client.disown", "client.new_link", "client.accept"}
OPENS_BANK_LINKS = {"bank_links.add", "bank_links.restore", "client.add_bank", "client.restore"}


def rules(app) -> list:
    """Every route; those that open a bank link after the page that finishes every open
    one (else each visit there finishes more), those that end the session (or the
    client's link) last."""
    return sorted(app.url_map.iter_rules(), key=lambda r: (
        r.endpoint in ENDS_THE_SESSION, r.endpoint in OPENS_BANK_LINKS, r.rule, r.endpoint))


def test_every_route_answers_odd_input_below_500(everything, people):
    routes = rules(everything)
    covered = {r.rule for r in routes}
    assert {"/slack/install", "/slack/events", "/sms/inbound", "/banks/plaid/webhook",
            "/api/v1/tokens", "/unsubscribe/<token>", "/i/<token>"} <= covered  # all registered
    anonymous = Sweep(everything.test_client())
    web, form_token, bearer = signed_in(everything, people)
    member = Sweep(web, bearer)
    for rule in routes:
        sweep_rule(anonymous, rule, people, None, deep=False)
        sweep_rule(member, rule, people, form_token)
    failures = anonymous.failures + member.failures
    assert not failures, "\n".join(repr(f) for f in failures)
    assert member.sent > 25 * len(routes)


# --- correctly signed, but odd ---------------------------------------------------------------


def slack_bodies(response_url: str) -> list[tuple[str, str]]:
    form = "application/x-www-form-urlencoded"
    command = {"token": "legacy", "team_id": TEAM, "user_id": "UANN", "command": "/ledgersync",
               "channel_id": "CWORK", "response_url": response_url}
    return [
        (form, "payload=" + quote(NESTED)), (form, "payload=" + quote(DEEP_OBJECT)),
        (form, "payload=" + quote('"text"')), (form, "payload=%FF%FE"), (form, "%00=%00"),
        (form, "payload=" + quote('{"authorizations": [1]}')),
        (form, urlencode({**command, "text": "transactions Maria since:²d"})),
        (form, urlencode({**command, "text": "clients ² ٣ \x00"})),
        (form, urlencode({**command, "team_id": "é²", "user_id": "\x00"})),
        ("application/json", NESTED), ("application/json", DEEP_OBJECT),
        ("application/json", '{"type": "url_verification", "challenge": {"a": [1]}}'),
        ("application/json", "[1, 2]"), ("application/json", "\x00"),
    ]


def twilio_forms() -> list[dict]:
    base = {"MessageSid": "SM" + "1" * 32, "AccountSid": "AC" + "0" * 32, "To": FROM_NUMBER,
            "From": "+12125550134"}
    return [{**base, "Body": NESTED, "NumMedia": "²"},
            {**base, "From": "+١٢١٢٥٥٥٠١٣٤", "Body": "٣", "NumMedia": "٣"},
            {**base, "MessageSid": "²", "MessageStatus": "é²", "ErrorCode": "٣٠٠٠٣"},
            {**base, "Body": "x" * (MEGABYTE // 2), "NumMedia": "99999999999999999999"}]


def plaid_hook(web, plaid, raw: bytes):
    claims = {"iat": int(time.time()), "request_body_sha256": hashlib.sha256(raw).hexdigest()}
    token = jwt.encode(claims, plaid.key, algorithm="ES256", headers={"kid": plaid.kid})
    return web.post("/banks/plaid/webhook", data=raw, headers={
        "Plaid-Verification": token, "Content-Type": "application/json"})


def test_signed_but_odd_requests_answer_below_500(everything, people, slack, plaid):
    from twilio.request_validator import RequestValidator

    web = everything.test_client()
    codes = {}
    for content_type, body in slack_bodies(slack.response_url()):
        reply = signed(web, body, headers={"Content-Type": content_type})
        codes[f"slack {content_type} {body[:40]!r}"] = reply.status_code
    for form in twilio_forms():
        for path in ("/sms/inbound", "/sms/status"):
            signature = RequestValidator(AUTH_TOKEN).compute_signature(f"{PUBLIC}{path}", form)
            reply = web.post(path, data=form, headers={"X-Twilio-Signature": signature})
            codes[f"twilio {path} {str(form)[:60]}"] = reply.status_code
    for raw in (NESTED.encode(), DEEP_OBJECT.encode(), b"[1]", b"\xff\xfe",
                b'{"item_id": ["\xc2\xb2"]}',
                b'{"webhook_type": "ITEM", "webhook_code": "ERROR", "error": "\xd9\xa3"}'):
        codes[f"plaid {raw[:40]!r}"] = plaid_hook(web, plaid, raw).status_code
    failures = [f"{code} {name}" for name, code in codes.items() if code >= 500]
    assert not failures, "\n".join(failures)


# Found by the sweep: a signed Slack callback Bolt's middleware can't take, and a bank
# code form's challenge that isn't ASCII.


def test_a_signed_slack_event_that_is_not_an_object_is_below_500(everything):
    body = '{"type": "event_callback", "team_id": "T0FIRM", "event": "²"}'
    reply = signed(everything.test_client(), body, headers={"Content-Type": "application/json"})
    assert reply.status_code < 500


def test_an_odd_bank_code_challenge_is_below_500(sqlite_database):
    from web import create_app

    app = create_app(config.settings().with_(redis_url="redis://127.0.0.1:1/0"))
    wiring.inline()
    firm = firms.create("Smith & Co", admin_email="ann@smith.example", admin_password="x" * 12)
    maria = clients.add(firm, "Maria Gonzalez", phone="2125550134")
    invite = invites.send(maria, "sms").invite
    web, form_token, _ = signed_in(app, {"invite": tokens.unseal(invite.token_sealed),
                                         "api": ""})
    reply = web.post("/i/account/add/chase", data={"csrf_token": form_token,
                                                    "challenge": "é²", "code": "1234"})
    assert reply.status_code < 500

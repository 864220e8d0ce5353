"""The service as production runs it: https behind a TLS-terminating proxy
(`X-Forwarded-For`/`-Proto`, PROXY_HOPS=1), through the real Flask app. Each test
is one of the defects that blocked a launch."""

from __future__ import annotations

import json
import logging
import re
import time
from datetime import timedelta

import pytest
from peewee import SqliteDatabase

import wiring
from core.firms import firms
from core.invitations import clients, invites, links
from core.platform import config, db, tokens
from core.platform.errors import Refused
from core.records import ClientAccount, ClientSession, Event, Message
from tests.helpers import csrf, metric_samples, metric_value
from tests.slack_fixtures import slack_app
from tests.slack_requests import button, command, interaction, signed
from tests.slack_standin import TEAM
from tests.twilio_standin import AUTH_TOKEN, FROM_NUMBER

PUBLIC = "https://connect.example.com"
CLIENT_IP = "198.51.100.7"
PROXY = {"REMOTE_ADDR": "10.0.0.2"}  # the load balancer's own address


def behind_proxy(client_ip: str = CLIENT_IP, **headers) -> dict:
    return {"X-Forwarded-For": client_ip, "X-Forwarded-Proto": "https", **headers}


@pytest.fixture
def app(sqlite_database):
    app = app_with(proxy_hops=1)
    wiring.inline()
    return app


def app_with(**settings):
    """The real app behind the proxy's settings, with Redis away (work done in the request)."""
    from web import create_app

    return create_app(config.settings().with_(redis_url="redis://127.0.0.1:1/0", **settings))


@pytest.fixture
def web(app):
    return app.test_client()


@pytest.fixture
def invited(clock, sqlite_database):
    firm = firms.create("Smith & Co", admin_email="a@s.example", admin_password="x" * 12)
    client = clients.add(firm, "Maria Gonzalez", phone="2125550134")
    invite = invites.send(client, "sms").invite
    return invite, tokens.unseal(invite.token_sealed)


def get(web, path, client_ip=CLIENT_IP, **headers):
    return web.get(path, headers=behind_proxy(client_ip, **headers), environ_base=PROXY)


def post(web, path, data=None, client_ip=CLIENT_IP, **headers):
    return web.post(path, data=data or {}, headers=behind_proxy(client_ip, **headers),
                    environ_base=PROXY)


def accept(web, token, **headers):
    page = get(web, f"/i/{token}")
    return post(web, f"/i/{token}/accept", {"csrf_token": csrf(page)}, **headers)


# --- 1. Accept over https, with no Referer (the pages ask browsers for none) ------------


def test_accept_over_https_without_a_referer(web, invited):
    invite, token = invited
    # What a browser sends from our page under `Referrer-Policy: no-referrer`.
    reply = accept(web, token, **{"Origin": "null", "Sec-Fetch-Site": "same-origin"})
    assert reply.status_code == 302 and reply.headers["Location"] == "/i/account"
    assert "Secure" in reply.headers["Set-Cookie"]
    assert ClientAccount.get(ClientAccount.client == invite.client_id)
    assert "No banks connected yet" in get(web, "/i/account").text


def test_a_post_from_another_site_is_refused_even_with_a_token(web, invited):
    _, token = invited
    assert accept(web, token, **{"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert accept(web, token, Origin="https://evil.example").status_code == 403
    assert not ClientAccount.select().exists()
    assert accept(web, token, Origin=PUBLIC).status_code == 302  # an older browser, our origin


# --- 2. No working link at rest or in logs ---------------------------------------------


def test_no_working_link_in_the_database(web, invited):
    invite, token = invited
    invites.remind(invite.client)
    invites.send(clients.add(invite.firm, "Ed Email", email="ed@example.com"), "email")
    rows = [m for m in Message.select()]
    assert len(rows) == 3
    dump = json.dumps([[m.body, m.html, m.subject] for m in rows])
    found = re.findall(r"/i/([A-Za-z0-9_-]{22})", dump)
    assert found == [] and "/i/" in dump  # links there, masked
    for row in Event.select():
        assert token not in json.dumps(row.detail)


def test_log_lines_mask_link_tokens(web, invited, caplog):
    _, token = invited
    caplog.set_level(logging.INFO)
    logging.getLogger("gunicorn.access").info(
        '%(h)s "%(r)s" %(s)s', {"h": CLIENT_IP, "r": f"GET /i/{token} HTTP/1.1", "s": "200"})
    try:
        raise ValueError(f"could not open /i/{token}")
    except ValueError:
        logging.getLogger("web").exception("failed on /i/%s", token)
    text = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert token not in text
    assert f"/i/{token[:4]}…" in text


# --- 3. Honest health; no stack trace when the database is away -------------------------


@pytest.fixture
def database_down(web):
    db.bind("postgresql://postgres@127.0.0.1:1/nowhere")
    yield
    db.database.initialize(SqliteDatabase(":memory:"))


def test_health_says_which_part_is_down(web, database_down):
    reply = web.get("/healthz")
    assert reply.status_code == 503
    assert reply.json["database"] == "unavailable" and reply.json["status"] == "degraded"


def test_pages_answer_503_with_retry_after_when_the_database_is_away(web, database_down):
    page = get(web, "/i/" + "A" * 22)
    assert page.status_code == 503 and page.headers["Retry-After"] == "30"
    assert "Try again in a minute" in page.text and "Traceback" not in page.text
    asked = get(web, "/i/account", Accept="application/json")
    assert asked.status_code == 503 and asked.json["status"] == 503


# --- 4. Behind a proxy, the throttle counts each client's own guesses --------------------


def test_one_guesser_behind_the_proxy_does_not_block_everyone(web, invited):
    _, token = invited
    for _ in range(25):
        last = get(web, "/i/" + "B" * 22, client_ip="203.0.113.9")
    assert last.status_code == 429
    assert get(web, f"/i/{token}").status_code == 200  # another client, same proxy
    assert get(web, "/i/" + "B" * 22, client_ip="192.0.2.44").status_code == 404


def test_without_a_trusted_proxy_a_forged_forwarded_for_changes_nothing(invited):
    direct = app_with()
    wiring.inline()
    web = direct.test_client()
    for n in range(25):  # a new made-up address on every guess
        last = web.get("/i/" + "C" * 22, headers={"X-Forwarded-For": f"192.0.2.{n}"},
                       environ_base={"REMOTE_ADDR": "203.0.113.50"})
    assert last.status_code == 429


# --- 5. Sessions end: sign-out, a revoked or replaced link, idle time --------------------


def copied_cookie(web) -> str:
    return web.get_cookie("ls_session").value


def test_a_copied_cookie_stops_working_after_sign_out(app, web, invited):
    _, token = invited
    accept(web, token)
    cookie = copied_cookie(web)
    page = get(web, "/i/account")
    post(web, "/i/account/sign-out", {"csrf_token": csrf(page)})
    thief = app.test_client()
    thief.set_cookie("ls_session", cookie, domain="localhost")
    assert get(thief, "/i/account").status_code == 403
    assert ClientSession.get().end_reason == "signed out"
    assert all(len(s.digest) == 64 for s in ClientSession.select())  # only a digest kept


def test_replacing_or_revoking_the_link_ends_the_session(web, invited, clock):
    invite, token = invited
    accept(web, token)
    client = invite.client
    reconnect = invites.send(client, "sms", purpose="reconnect")
    assert get(web, "/i/account").status_code == 200  # a new invite alone ends nothing
    clock.shift(timedelta(minutes=2))
    invites.resend(client)
    assert get(web, "/i/account").status_code == 403
    assert links.check(tokens.unseal(reconnect.invite.token_sealed)).state == "superseded"

    fresh = invites.open_invite(client)
    accept(web, tokens.unseal(fresh.token_sealed))
    assert get(web, "/i/account").status_code == 200
    invites.send(client, "sms", purpose="reconnect")
    invites.revoke(client)
    assert get(web, "/i/account").status_code == 403


def test_revoking_an_accepted_client_signs_them_out(web, invited):
    invite, token = invited
    accept(web, token)
    revoked = invites.revoke(invite.client)  # nothing open: the account is what's revoked
    assert revoked.invite is None and revoked.sessions_ended == 1
    assert str(revoked) == "they are signed out of their account"
    assert get(web, "/i/account").status_code == 403
    assert Event.get(Event.kind == "client.signed_out").client_id == invite.client_id
    with pytest.raises(Refused, match="already accepted"):
        invites.revoke(invite.client)  # nothing left to revoke


def test_a_session_ends_after_a_day_unused(web, invited, clock):
    _, token = invited
    accept(web, token)
    clock.shift(timedelta(hours=23))
    assert get(web, "/i/account").status_code == 200
    clock.shift(timedelta(hours=23))  # used 23 h ago: still within the idle limit
    assert get(web, "/i/account").status_code == 200
    clock.shift(timedelta(hours=24, minutes=1))
    assert get(web, "/i/account").status_code == 403
    assert ClientSession.get().end_reason == "idle"


# --- 7. "Request a new link" on an unknown token says what any unknown link says ---------


def test_new_link_for_an_unknown_token_answers_like_any_unknown_link(web, invited):
    unknown = "D" * 22
    page = get(web, f"/i/{unknown}")
    token_form = get(web, f"/i/{invited[1]}")  # any page of ours, for a valid CSRF token
    reply = post(web, f"/i/{unknown}/new-link", {"csrf_token": csrf(token_form)})
    assert reply.status_code == page.status_code == 404
    assert reply.text == page.text
    assert "None" not in reply.text and "let them know" not in reply.text


# --- 8. Security headers on every response; HSTS over https -----------------------------


@pytest.mark.parametrize("path", ["/healthz", "/nothing-here", "/i/" + "E" * 22])
def test_security_headers_everywhere(web, invited, path):
    reply = get(web, path)
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.headers["X-Frame-Options"] == "DENY"
    assert reply.headers["Referrer-Policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in reply.headers["Content-Security-Policy"]
    assert reply.headers["Strict-Transport-Security"].startswith("max-age=")
    plain = web.get(path, environ_base=PROXY)  # no X-Forwarded-Proto: not https
    assert "Strict-Transport-Security" not in plain.headers


def test_the_404_page_is_ours(web):
    reply = get(web, "/nothing-here")
    assert reply.status_code == 404 and "There is nothing here" in reply.text


# --- 6. Odd bytes get a clean answer, never a 500 ---------------------------------------


def _twilio_post(web, path: str, form: dict):
    from twilio.request_validator import RequestValidator

    signature = RequestValidator(AUTH_TOKEN).compute_signature(f"{PUBLIC}{path}", form)
    return web.post(path, data=form, headers={"X-Twilio-Signature": signature})


@pytest.fixture
def texting_app(database, slack, twilio_settings):
    firm = firms.create("Smith & Co", admin_email="ann@smith.example",
                        admin_password="correct horse 1")
    clients.add(firm, "Maria Gonzalez", phone="2125550134")
    from core.firms import access

    assert access.connect(TEAM, "UANN", "ann@smith.example", "correct horse 1").ok
    return slack_app(slack)


def test_a_signed_text_with_a_nul_byte_is_recorded_and_answered(texting_app):
    form = {"MessageSid": "SM" + "1" * 32, "AccountSid": "AC" + "0" * 32,
            "From": "+12125550134\x00", "To": FROM_NUMBER, "Body": "HELP\x00 me", "NumMedia": "0"}
    reply = _twilio_post(texting_app, "/sms/inbound", form)
    assert reply.status_code == 200 and reply.mimetype == "text/xml"
    inbound = Message.get(Message.direction == "in")
    assert inbound.from_addr == "+12125550134" and "\x00" not in inbound.body


def test_a_signed_text_with_an_overlong_sender_is_refused_cleanly(texting_app):
    form = {"MessageSid": "SM" + "2" * 32, "AccountSid": "AC" + "0" * 32,
            "From": "+1" + "2" * 300, "To": FROM_NUMBER, "Body": "hi", "NumMedia": "0"}
    reply = _twilio_post(texting_app, "/sms/inbound", form)
    assert reply.status_code == 400 and "From" in reply.text
    assert not Message.select().where(Message.direction == "in").exists()
    receipt = {"MessageSid": "SM\x00" + "3" * 32, "MessageStatus": "delivered\x00"}
    assert _twilio_post(texting_app, "/sms/status", receipt).status_code == 204


def test_a_slack_timestamp_that_is_not_a_number_is_401(texting_app, slack):
    reply = command(texting_app, slack, "help", timestamp="yesterday")
    assert reply.status_code == 401


def test_tampered_button_ids_get_an_ephemeral_answer(texting_app, slack):
    for action, value in (("resend", "12; drop"), ("pick_client", '{"cmd": "status", '
                                                                   '"client": "x"}'),
                          ("show_more", '{"cmd": "clients", "offset": "-5"}')):
        assert button(texting_app, slack, action, value).status_code == 200
    answers = slack.wait_for("respond:button", 3)
    assert all("this button is out of date" in a["text"] for a in answers), answers
    meta = json.dumps({"client": "not-a-number", "response_url": slack.response_url("modal")})
    reply = interaction(texting_app, {
        "type": "view_submission", "team": {"id": TEAM}, "user": {"id": "UANN"},
        "api_app_id": "A1", "view": {"id": "V1", "callback_id": "invite_modal",
                                     "private_metadata": meta, "state": {"values": {}},
                                     "type": "modal"}})
    assert reply.status_code == 200
    assert "this button is out of date" in json.dumps(slack.wait_for("respond:modal"))


def test_a_forged_slack_request_is_still_401(texting_app):
    assert signed(texting_app, "text=help", secret="wrong").status_code == 401


@pytest.mark.parametrize("public,origin,ok", [
    ("https://connect.example.com", "https://connect.example.com", True),
    ("https://connect.example.com:443", "https://connect.example.com", True),
    ("https://Connect.Example.com/", "https://connect.example.com", True),
    ("http://127.0.0.1:5000", "http://127.0.0.1:5000", True),
    ("https://connect.example.com", "https://connect.example.com:8443", False),
    ("https://connect.example.com", "http://connect.example.com", False),
    ("https://connect.example.com", "https://connect.example.com.evil.example", False),
])
def test_origins_compare_as_browsers_send_them(public, origin, ok):
    from web import security

    assert (security.origin_of(origin) == security.origin_of(public)) is ok


def test_a_slack_timestamp_of_unicode_digits_is_401(texting_app, slack):
    reply = command(texting_app, slack, "help", timestamp="170000000\u00b2")
    assert reply.status_code == 401


@pytest.mark.parametrize("path", ["/account/sign-in", "/api/v1/clients", "/i/" + "E" * 22])
def test_a_query_string_that_is_not_utf8_is_400(web, path):
    # Raw bytes in the request line reach us as they are; reading them would raise.
    reply = web.get(path, headers=behind_proxy(), environ_base=PROXY,
                    environ_overrides={"QUERY_STRING": b"lang=\xff\xfe".decode("latin-1")})
    assert reply.status_code == 400


@pytest.mark.parametrize("body", ["[" * 5000 + "]" * 5000, "payload=%FF%FE", "[1, 2]"])
def test_an_unsigned_slack_body_bolt_cant_read_is_refused_not_500(texting_app, body):
    reply = texting_app.post("/slack/events", data=body, headers={
        "X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=" + "0" * 64,
        "Content-Type": "application/json" if body.startswith("[") else
        "application/x-www-form-urlencoded"})
    assert reply.status_code == 400


def test_our_other_pages_have_the_strict_policy_too(web):
    policy = get(web, "/nothing-here").headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy


# --- a client's page that waited too long behind the proxy: "busy" at once ---------------


def stamped(waited: float, form: str = "ms") -> dict:
    """The proxy's arrival stamp on a request that has waited `waited` s by now: as
    Heroku's router writes it (milliseconds), or nginx's `t=${msec}` (seconds)."""
    at = time.time() - waited  # (the travelled clock: the tests' T0)
    return {"X-Request-Start": f"{at * 1000:.0f}" if form == "ms" else f"t={at:.3f}"}


def scraped(app) -> list:
    return metric_samples(app.test_client().get("/metrics",
                                                headers={"Authorization": "Bearer m"}).text)


@pytest.fixture
def metered(sqlite_database):
    app = app_with(proxy_hops=1, page_busy_after=timedelta(seconds=3), metrics_token="m")
    wiring.inline()
    return app


@pytest.mark.parametrize("form", ["ms", "t="])
def test_a_link_opened_after_waiting_too_long_behind_the_proxy_is_busy_at_once(
        clock, metered, invited, form):
    """Past PAGE_BUSY_AFTER (3 s) in the proxy's queue: a short page in the visitor's
    language saying to try again, before any work — the link isn't even opened."""
    invite, token = invited
    web = metered.test_client()
    before = scraped(metered)
    page = get(web, f"/i/{token}", **stamped(4.0, form))
    assert page.status_code == 503 and page.headers["Retry-After"] == "60"
    assert "<h1>LedgerSync is busy</h1>" in page.text and "Try again in a minute" in page.text
    assert page.headers["Cache-Control"] == "no-store"
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Strict-Transport-Security"] and "Set-Cookie" not in page.headers
    assert invite.refreshed().first_clicked_at is None
    spanish = get(web, f"/i/{token}", **stamped(4.0, form), **{"Accept-Language": "es-MX,es"})
    assert spanish.status_code == 503 and "LedgerSync está ocupado" in spanish.text
    assert "Inténtelo de nuevo en un minuto" in spanish.text
    after = scraped(metered)
    for counted in ("ledgersync_pages_busy_total", "ledgersync_http_requests_total"):
        assert metric_value(after, counted) - metric_value(before, counted) >= 2, counted
    opened = get(web, f"/i/{token}", **stamped(2.5, form))  # in time: the page
    assert opened.status_code == 200 and "Hi Maria" in opened.text
    assert invite.refreshed().first_clicked_at is not None
    assert metric_value(scraped(metered), "ledgersync_http_queue_seconds_count") - \
        metric_value(after, "ledgersync_http_queue_seconds_count") >= 1


def test_only_the_clients_pages_are_turned_away_and_only_behind_a_proxy(clock, metered,
                                                                        invited):
    """Webhooks (a text or receipt refused would be lost) and the metrics are answered
    however long they waited; without PROXY_HOPS the stamp is a client's word,
    not believed; a stamp an hour old is a clock out of step, not a queue."""
    _, token = invited
    web = metered.test_client()
    assert get(web, "/metrics", Authorization="Bearer m", **stamped(30)).status_code == 200
    inbound = web.post("/sms/inbound", data={"From": "+12125550134", "Body": "HELP"},
                       headers=behind_proxy(**stamped(30)), environ_base=PROXY)
    assert inbound.status_code != 503  # (refused for its missing signature: a 403)
    assert get(web, f"/i/{token}", **stamped(2 * 3600)).status_code == 200
    not_behind_one = app_with(proxy_hops=0, page_busy_after=timedelta(seconds=3))
    assert not_behind_one.test_client().get(f"/i/{token}", headers=stamped(30)).status_code \
        == 200


def test_without_page_busy_after_the_stamp_is_not_read(clock, app, invited):
    """Off by default: behind a proxy that doesn't set X-Request-Start, a client's own
    would be passed on."""
    _, token = invited
    assert get(app.test_client(), f"/i/{token}", **stamped(30)).status_code == 200


def test_the_proxys_stamp_is_read_in_whatever_unit_it_comes():
    """nginx's `t=` seconds, Heroku's milliseconds, Apache's microseconds, nanoseconds;
    a clock ahead of ours waits nothing; what isn't a number is no stamp."""
    from web.busy import waited

    now = 1_800_000_000.0
    for stamp in ("t=1799999996.500", "1799999996500", "1799999996500000",
                  "1799999996500000000", " t=1799999996.5 "):
        assert waited(stamp, now) == pytest.approx(3.5), stamp
    assert waited(f"t={now + 2}", now) == 0.0
    assert waited("soon", now) is None and waited("", now) is None and waited(None, now) is None

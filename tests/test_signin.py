"""Signing in again with a one-time code (`/account/sign-in`), through the real Flask
app, texts through the Twilio stand-in, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest

import wiring
from core import ports
from core.banking import connections
from core.firms import firms
from core.invitations import clients, invites, links
from core.messaging import optouts, outbox
from core.platform import config, tokens
from core.records import BankConnection, ClientSession, Event, Message, SignInAttempt
from tests.conftest import T0
from tests.helpers import app_without_redis, csrf

MARIA = "+12125550134"


@pytest.fixture
def app(database, twilio_settings):
    return app_without_redis()


@pytest.fixture
def web(app):
    return app.test_client()


@pytest.fixture
def smith(database):
    return firms.create("Smith & Co", admin_email="ann@smith.example",
                        admin_password="correct horse battery")


def accepted(firm, name="Maria Gonzalez", phone="(212) 555-0134", email="maria@example.com"):
    """A client who accepted a link once: they have an account, and no session here."""
    client = clients.add(firm, name, phone=phone, email=email)
    sent = invites.send(client, "sms")
    links.accept(tokens.unseal(sent.invite.token_sealed))
    return client


@pytest.fixture
def maria(smith):
    return accepted(smith)


def ask(web, address: str):
    page = web.get("/account/sign-in")
    return web.post("/account/sign-in", data={"csrf_token": csrf(page), "address": address})


def code_page(web, address: str):
    asked = ask(web, address)
    assert asked.status_code == 302 and asked.headers["Location"] == "/account/sign-in/code"
    return web.get("/account/sign-in/code")


def send_code(web, page, code: str):
    return web.post("/account/sign-in/code", data={"csrf_token": csrf(page), "code": code})


def code_in(text: str) -> str:
    return re.search(r"\b(\d{6})\b", text).group(1)


def last_code_texted(twilio, to: str = MARIA) -> str:
    body = twilio.sent(to)[-1].body
    assert "sign-in code" in body
    return code_in(body)


# --- the whole way -----------------------------------------------------------------


def test_a_code_by_text_signs_the_client_in_again_to_the_same_limited_account(
        clock, web, twilio, maria, caplog):
    caplog.set_level(logging.DEBUG)
    broken = BankConnection.create(client=maria, institution_id="ally-bank",
                                   institution_name="Ally Bank")
    connections.mark_broken(broken)
    page = code_page(web, "(212) 555-0134")
    assert "•••-0134" in page.text and "6-digit code" in page.text
    text = twilio.sent(MARIA)[-1]
    code = code_in(text.body)
    assert text.body == (f"{code} is your LedgerSync sign-in code. It works for 10 minutes, "
                         f"once. Don't share it.\n\n@connect.example.com #{code}")
    assert text.segments == 1
    signed_in = send_code(web, page, code)
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/i/account"
    account = web.get("/i/account")
    assert "Needs restoring" in account.text and "Restore Ally Bank" in account.text
    assert "/account/sign-in" in account.text  # the footer: how to come back later
    form = web.get(f"/i/account/restore/{broken.id}")
    assert "Smith &amp; Co" in form.text  # the firm's name in the header, on the bank's page
    web.post(f"/i/account/restore/{broken.id}", data={"csrf_token": csrf(form),
                                                       "username": "user_good",
                                                       "password": "pass_good"})
    assert broken.refreshed().status == "active"
    session = ClientSession.get(ClientSession.client == maria, ClientSession.invite.is_null())
    assert session.ended_at is None
    kinds = [e.kind for e in Event.select().where(Event.client == maria).order_by(Event.id)]
    assert kinds[-3:] == ["signin.code_sent", "signin.succeeded", "connection.restored"]
    assert web.get("/i/admin").status_code in (403, 404)  # still only the limited account
    assert code not in caplog.text and code not in Message.get(Message.kind == "signin_code").body


def test_a_code_by_email_and_the_code_is_never_kept_or_logged(web, maria, caplog):
    caplog.set_level(logging.DEBUG)
    page = code_page(web, "Maria@Example.com")
    assert "m•••@example.com" in page.text
    message = Message.get(Message.kind == "signin_code")
    assert (message.channel, message.to_addr) == ("email", "maria@example.com")
    sent = outbox.text(message)  # as the recipient reads it
    code = code_in(sent)
    assert f"Your sign-in code is {code}." in sent
    stored = message.refreshed()
    assert code not in stored.body and code not in (stored.html or "")
    assert "[sealed:" in stored.body
    attempt = SignInAttempt.get()
    assert code not in attempt.code_digest and code not in str(attempt.clients)
    assert send_code(web, page, code).headers["Location"] == "/i/account"
    assert code not in caplog.text


def test_the_session_a_code_starts_ends_as_any_other(web, twilio, maria):
    page = code_page(web, MARIA)
    send_code(web, page, last_code_texted(twilio))
    assert web.get("/i/account").status_code == 200
    invites.revoke(maria)  # the firm revokes: signed out everywhere, at once
    assert web.get("/i/account").status_code == 403


# --- the same answer for everyone ----------------------------------------------------------


def normalized(page) -> str:
    text = re.sub(r'name="csrf_token" value="[^"]+"', "", page.text)
    return re.sub(r"•••-\d{4}", "•••-XXXX", text)


def test_an_unknown_number_sees_exactly_the_page_a_known_one_sees(app, twilio, maria):
    known, unknown = app.test_client(), app.test_client()
    known_page = code_page(known, "(212) 555-0134")
    unknown_page = code_page(unknown, "(212) 555-0199")
    assert known_page.status_code == unknown_page.status_code == 200
    assert normalized(known_page) == normalized(unknown_page)
    assert len(twilio.sent("+12125550199")) == 0
    for _ in range(4):  # wrong codes answer alike too
        assert normalized(send_code(known, known_page, "000000")) == \
            normalized(send_code(unknown, unknown_page, "000000"))
    assert normalized(send_code(known, known_page, "000000")) == \
        normalized(send_code(unknown, unknown_page, "000000"))
    assert SignInAttempt.select().count() == 2


def test_a_malformed_address_is_a_question_of_form_only(web, maria):
    refused = ask(web, "not a number")
    assert refused.status_code == 422
    assert "Enter the mobile number or the email your firm has" in refused.text
    assert not SignInAttempt.select().exists()


# --- the code's limits --------------------------------------------------------------------


def test_five_wrong_codes_end_it_even_for_the_right_code_after(web, twilio, maria):
    page = code_page(web, MARIA)
    code = last_code_texted(twilio)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for left in (4, 3, 2, 1):
        answer = send_code(web, page, wrong)
        assert answer.status_code == 422
        assert f"That code isn't right. {left} tr" in answer.text
    ended = send_code(web, page, wrong)
    assert ended.status_code == 410 and "This code doesn't work any more" in ended.text
    assert web.get("/account/sign-in/code").headers["Location"] == "/account/sign-in"
    again = web.post("/account/sign-in/code", data={"csrf_token": csrf(page), "code": code})
    assert again.status_code == 302 and again.headers["Location"] == "/account/sign-in"
    assert not ClientSession.select().where(ClientSession.invite.is_null()).exists()
    assert Event.get(Event.kind == "signin.locked").client_id == maria.id


def test_a_code_works_once_and_for_ten_minutes(clock, app, twilio, maria):
    first = app.test_client()
    page = code_page(first, MARIA)
    code = last_code_texted(twilio)
    clock.shift(timedelta(minutes=10))
    assert send_code(first, page, code).status_code == 410  # too late
    second = app.test_client()
    page = code_page(second, MARIA)
    code = last_code_texted(twilio)
    clock.shift(timedelta(minutes=9, seconds=59))
    assert send_code(second, page, code).headers["Location"] == "/i/account"
    from core.invitations import sign_in

    nonce = SignInAttempt.select().order_by(SignInAttempt.id.desc()).first()
    assert nonce.used_at is not None
    assert sign_in.check("not-the-browser's-nonce", code).status == "ended"


def test_a_code_opens_nothing_in_another_browser(app, twilio, maria):
    asker, other = app.test_client(), app.test_client()
    code_page(asker, MARIA)
    code = last_code_texted(twilio)
    page = other.get("/account/sign-in")
    answer = other.post("/account/sign-in/code", data={"csrf_token": csrf(page), "code": code})
    assert answer.headers["Location"] == "/account/sign-in"
    assert other.get("/i/account").status_code == 403


def test_at_most_three_codes_an_hour_per_client(clock, app, twilio, maria):
    for _ in range(5):
        code_page(app.test_client(), MARIA)  # the same page every time
        clock.shift(timedelta(minutes=1))
    assert len([t for t in twilio.sent(MARIA) if "sign-in code" in t.body]) == 3
    clock.shift(timedelta(minutes=56))
    code_page(app.test_client(), MARIA)
    assert len([t for t in twilio.sent(MARIA) if "sign-in code" in t.body]) == 4


def test_asking_and_guessing_are_throttled_per_address(app, maria):
    web = app.test_client()
    for _ in range(10):
        assert ask(web, "(212) 555-0100").status_code == 302
    blocked = ask(web, "(212) 555-0134")
    assert blocked.status_code == 429 and "Too many codes" in blocked.text
    assert ask(app.test_client(), MARIA).status_code == 429  # the address, not the browser


def test_the_throttle_counts_the_clients_own_address_behind_a_proxy(database, maria):
    from web import create_app

    app = create_app(config.settings().with_(redis_url="redis://127.0.0.1:1/0", proxy_hops=1))
    wiring.inline()
    web = app.test_client()
    for _ in range(10):
        page = web.get("/account/sign-in")
        web.post("/account/sign-in", data={"csrf_token": csrf(page), "address": MARIA},
                 headers={"X-Forwarded-For": "198.51.100.7"})
    page = web.get("/account/sign-in")
    blocked = web.post("/account/sign-in", data={"csrf_token": csrf(page), "address": MARIA},
                       headers={"X-Forwarded-For": "198.51.100.7"})
    other = web.post("/account/sign-in", data={"csrf_token": csrf(page), "address": MARIA},
                     headers={"X-Forwarded-For": "203.0.113.9"})
    assert (blocked.status_code, other.status_code) == (429, 302)


# --- opt-outs, several firms, revoked access --------------------------------------------


def test_an_opted_out_number_gets_the_code_by_email_and_is_told_how_to_get_texts(web, twilio,
                                                                                 maria):
    optouts.opt_out(MARIA, "replied STOP", client=maria)
    before = len(twilio.sent(MARIA))
    page = code_page(web, MARIA)
    assert len(twilio.sent(MARIA)) == before  # no text to a number that said STOP
    assert "reply START" in page.text and "the code went there instead" in page.text
    email = Message.get(Message.kind == "signin_code")
    assert (email.channel, email.to_addr) == ("email", "maria@example.com")
    assert send_code(web, page, code_in(outbox.text(email))).headers["Location"] == \
        "/i/account"


def test_an_opted_out_number_without_an_email_gets_nothing_and_is_told_what_to_do(web, twilio,
                                                                                   smith):
    accepted(smith, "Jo Text", phone="(212) 555-0177", email=None)
    optouts.opt_out("+12125550177", "replied STOP")
    page = code_page(web, "+12125550177")
    assert "reply START" in page.text and "ask your firm for a new link" in page.text
    assert not Message.select().where(Message.kind == "signin_code").exists()


def test_a_number_at_two_firms_signs_into_a_chooser_of_those_accounts(app, twilio, maria):
    jones = firms.create("Jones Tax", admin_email="jo@jones.example", admin_password="x" * 12)
    theirs = accepted(jones, "Maria G.")
    accepted(jones, "Someone Else", phone="(212) 555-0188", email="else@example.com")
    web = app.test_client()
    page = code_page(web, MARIA)
    texts = [t for t in twilio.sent(MARIA) if "sign-in code" in t.body]
    assert len(texts) == 1  # one code for the number
    chooser = send_code(web, page, code_in(texts[0].body))
    assert chooser.headers["Location"] == "/account/sign-in/choose"
    choices = web.get("/account/sign-in/choose")
    assert "Maria Gonzalez at Smith &amp; Co" in choices.text
    assert "Maria G. at Jones Tax" in choices.text and "Someone Else" not in choices.text
    other = clients.find(jones, "someone else")
    refused = web.post("/account/sign-in/choose", data={"csrf_token": csrf(choices),
                                                         "client": str(other.id)})
    assert refused.status_code == 200 and "Choose an account" in refused.text
    chosen = web.post("/account/sign-in/choose", data={"csrf_token": csrf(choices),
                                                        "client": str(theirs.id)})
    assert chosen.headers["Location"] == "/i/account"
    account = web.get("/i/account")
    assert "Jones Tax" in account.text
    again = web.post("/account/sign-in/choose", data={"csrf_token": csrf(account),
                                                       "client": str(maria.id)})
    assert again.status_code == 410  # chosen once: the attempt is spent


def test_a_client_the_firm_revoked_gets_no_code_until_they_accept_a_new_link(clock, app,
                                                                             twilio, maria):
    web = app.test_client()
    send_code(web, code_page(web, MARIA), last_code_texted(twilio))
    assert invites.revoke(maria).sessions_ended == 1  # signed out, access withdrawn
    before = len(twilio.sent(MARIA))
    web = app.test_client()
    code_page(web, MARIA)
    assert len(twilio.sent(MARIA)) == before
    clock.shift(timedelta(minutes=2))
    sent = invites.send(maria, "sms", purpose="reconnect")
    links.accept(tokens.unseal(sent.invite.token_sealed))
    code_page(web, MARIA)
    assert "sign-in code" in twilio.sent(MARIA)[-1].body


def test_a_client_who_never_accepted_gets_no_code(web, twilio, smith):
    client = clients.add(smith, "New Client", phone="(212) 555-0166")
    invites.send(client, "sms")
    code_page(web, "(212) 555-0166")
    assert not [t for t in twilio.sent("+12125550166") if "sign-in code" in t.body]


# --- where sign-in is offered --------------------------------------------------------------


def test_sign_in_is_offered_where_a_client_ends_up_without_a_way_in(clock, web, twilio, maria,
                                                                    smith):
    from core.invitations import client_texts

    used = invites.latest(maria)
    used_page = web.get(f"/i/{tokens.unseal(used.token_sealed)}")
    assert "already been used" in used_page.text and 'href="/account/sign-in"' in used_page.text
    unknown = web.get("/i/" + "Q" * 22)
    assert 'href="/account/sign-in"' in unknown.text
    fresh = clients.add(smith, "Late Client", email="late@example.com")
    late = invites.send(fresh, "email").invite
    clock.shift(timedelta(days=6))
    expired = web.get(f"/i/{tokens.unseal(late.token_sealed)}")
    assert "expired" in expired.text and 'href="/account/sign-in"' in expired.text
    assert 'href="/account/sign-in"' in web.get("/i/account").text  # signed out: 403 page
    answer = client_texts.received(client_texts.Inbound("SMhelp1", MARIA, "+15005550006", "HELP"))
    assert "Sign in: https://connect.example.com/account/sign-in " in answer.text
    assert Message.get(Message.kind == "answer_help").segments <= 2


# --- per client, from any address, and the same work for every address -------------------


def codes_sent() -> int:
    return Message.select().where(Message.kind == "signin_code").count()


def not_the_code(address: str) -> str:
    """A wrong code for the latest one sent to `address`."""
    sent = (Message.select().where(Message.kind == "signin_code", Message.to_addr == address)
            .order_by(Message.id.desc()).first())
    return f"{(int(code_in(outbox.text(sent))) + 1) % 10**6:06d}"


def test_ten_wrong_codes_a_day_from_any_address_close_sign_in_until_a_new_link(clock, app,
                                                                              twilio, maria):
    for address in (MARIA, "maria@example.com"):  # two addresses, two browsers: 5 + 5
        web = app.test_client()
        page = code_page(web, address)
        wrong = not_the_code(address)
        for _ in range(5):
            send_code(web, page, wrong)
    clock.shift(timedelta(hours=2))  # past the hourly limit: this is the day's
    known, unknown = app.test_client(), app.test_client()
    known_page = code_page(known, "(212) 555-0134")
    unknown_page = code_page(unknown, "(212) 555-0199")
    assert normalized(known_page) == normalized(unknown_page)  # the same page
    assert codes_sent() == 2  # no third code, by text or email
    assert SignInAttempt.select().order_by(SignInAttempt.id.desc()).first().clients == []
    assert Event.get(Event.kind == "signin.closed").detail["count"] == 10
    assert invites.latest(maria).status(T0) == "accepted"  # only a new link now
    sent = invites.send(maria, "sms", purpose="reconnect")
    links.accept(tokens.unseal(sent.invite.token_sealed))
    again = app.test_client()
    page = code_page(again, MARIA)
    assert codes_sent() == 3
    assert send_code(again, page, last_code_texted(twilio)).headers["Location"] == "/i/account"


def test_an_attempt_whose_code_went_nowhere_opens_nothing(clock, app, twilio, maria):
    for _ in range(4):  # the fourth this hour: no code, and nothing to guess
        code_page(app.test_client(), MARIA)
        clock.shift(timedelta(minutes=1))
    attempts = SignInAttempt.select().order_by(SignInAttempt.id)
    assert [a.clients for a in attempts] == [[maria.id]] * 3 + [[]]
    assert codes_sent() == 3


def test_asking_does_the_same_work_for_a_known_and_an_unknown_number(database, maria,
                                                                     monkeypatch):
    """The answer must take as long for a number nobody has: the request runs the same
    statements and hands the same one piece of work on (`bench/signin_timing.py`
    measures it)."""
    from core.invitations import sign_in

    handed, dispatched = [], []
    ports.install(ports.current().with_(sign_in_runner=lambda *work: handed.append(work),
                                        dispatcher=dispatched.extend))
    work = {}
    for who, address in (("known", "(212) 555-0134"), ("unknown", "(212) 555-0199")):
        statements = []  # every SQL statement run, as written (the values apart)
        monkeypatch.setattr(database, "query_hooks",
                            [lambda ran, into=statements: into.append(ran.sql)])
        asked = sign_in.ask(address)
        work[who] = (statements, len(handed), asked.channel, asked.opted_out)
    assert work["known"][0] and work["known"][0] == work["unknown"][0]
    assert "2125550134" not in str(handed) and "2125550199" not in str(handed)  # sealed
    assert (work["known"][1:], work["unknown"][1:]) == ((1, "sms", False), (2, "sms", False))
    assert dispatched == [] and codes_sent() == 0  # decided later, for both
    wiring.inline()
    for attempt_id, asked in handed:
        sign_in.send_code(attempt_id, asked)
        sign_in.send_code(attempt_id, asked)  # a job run twice sends once
    texts = Message.select().where(Message.kind == "signin_code")
    assert [m.to_addr for m in texts] == [MARIA]
    assert [a.clients for a in SignInAttempt.select().order_by(SignInAttempt.id)] == \
        [[maria.id], []]


def test_with_a_job_queue_a_worker_decides_and_the_queue_holds_nothing_readable(
        settings, database, redis_conn, maria):
    from core.invitations import sign_in
    from jobs import queues

    assert wiring.use_queue(settings)
    try:
        sign_in.ask(MARIA)
        sign_in.ask("(212) 555-0199")
        jobs = queues.queue("high").jobs
        assert [job.func_name for job in jobs] == ["jobs.signin.send_code"] * 2
        assert not [job for job in jobs if "2125550" in repr(job.args)]
        assert codes_sent() == 0
        assert [job.perform() for job in jobs] == ["1 sent", "0 sent"]
    finally:
        wiring.inline()
    assert [m.to_addr for m in Message.select().where(Message.kind == "signin_code")] == [MARIA]

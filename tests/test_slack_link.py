"""Linking a Slack user to a LedgerSync account on a one-time web page: the signed
`/ledgersync connect` → its button's URL → the page (its cookie) → Save Integration,
through the real Flask app, with Slack played by the stand-in. Never a password in
Slack, in a log line or in the database."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from urllib.parse import urlsplit

import pytest

import wiring
from core.firms import access, firms, slack_accounts
from core.messaging import outbound
from core.platform import config
from core.records import ALL_MODELS, Firm, SlackLinkRequest, Staff
from jobs.worker import LedgerSyncWorker
from tests.helpers import csrf
from tests.slack_fixtures import OTHER_TEAM
from tests.slack_requests import SECRET, button, command, opened_view
from tests.slack_standin import TEAM

CANARY = "canary-pw-93f1"
SAME_ORIGIN = {"Origin": "null", "Sec-Fetch-Site": "same-origin"}  # what browsers send here


@pytest.fixture
def cy(smith):
    return firms.add_staff(smith, "cy@smith.example", CANARY, name="Cy Young", role="staff")


def ask(web, slack, user: str = "UCY", team: str = TEAM) -> str:
    """`/ledgersync connect`, signed as Slack sends it: the path its button opens."""
    before = len(slack.of("respond:cmd"))
    assert command(web, slack, "connect", user=user, team=team).status_code == 200
    answer = slack.wait_for("respond:cmd", before + 1)[before]
    assert answer["response_type"] == "ephemeral" and "10 minutes" in json.dumps(answer)
    return _button_path(answer["blocks"])


def _button_path(blocks: list) -> str:
    buttons = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert [b["action_id"] for b in buttons] == ["link_page_opened"]
    url = buttons[0]["url"]
    assert url.startswith("https://connect.example.com/slack/link/")
    return urlsplit(url).path


def save(browser, path: str, page, password: str, email: str = "cy@smith.example", **headers):
    data = {"csrf_token": csrf(page), "email": email, "password": password}
    return browser.post(path, data=data, headers={**SAME_ORIGIN, **headers})


def linked(user: str) -> Staff | None:
    return Staff.get_or_none(Staff.slack_team_id == TEAM, Staff.slack_user_id == user)


# --- the flow, end to end ------------------------------------------------------------------


def test_connect_wrong_password_then_right_links_and_tells_slack(web, slack, cy):
    path = ask(web, slack)
    page = web.get(path)
    assert page.status_code == 200 and "Save Integration" in page.text
    assert 'type="password" autocomplete="current-password"' in page.text
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    cookie = page.headers.getlist("Set-Cookie")
    assert any(c.startswith("ls_link=") and "HttpOnly" in c and "SameSite=Lax" in c
               and "Path=/slack/link" in c for c in cookie)

    wrong = save(web, path, page, "not the password")
    assert wrong.status_code == 422
    assert "❌" in wrong.text and "Wrong email or password" in wrong.text
    assert "Forgot Password" in wrong.text and "Save Integration" in wrong.text
    assert linked("UCY") is None and access.resolve(TEAM, "UCY").kind == "nobody"
    assert "Wrong email or password" in json.dumps(slack.wait_for("chat.postMessage"))

    right = save(web, path, wrong, CANARY)
    assert right.status_code == 200
    assert "✅" in right.text and "Connected as Cy Young (staff) at Smith &amp; Co" in right.text
    assert linked("UCY").id == cy.id and access.resolve(TEAM, "UCY").role == "staff"
    dm = slack.dms("UCY")[-1]
    assert ":white_check_mark:" in json.dumps(dm) and "Connected as Cy Young (staff)" in dm["text"]
    assert "Save Integration" not in right.text


def test_a_used_link_says_so(web, slack, cy):
    path = ask(web, slack)
    page = web.get(path)
    assert save(web, path, page, CANARY).status_code == 200
    again = web.get(path)
    assert again.status_code == 410 and "already used" in again.text
    assert "Run /ledgersync connect again" in again.text
    assert save(web, path, page, CANARY).status_code == 410


def test_an_expired_link_says_so_and_links_nothing(web, slack, cy, clock):
    path = ask(web, slack)
    page = web.get(path)
    clock.shift(timedelta(minutes=11))
    assert "has expired" in web.get(path).text
    late = save(web, path, page, CANARY)
    assert late.status_code == 410 and "has expired" in late.text
    assert linked("UCY") is None


def test_a_link_checker_does_not_take_the_page(web, slack, cy):
    path = ask(web, slack)
    assert web.application.test_client().head(path).status_code == 200
    assert web.get(path).status_code == 200


def test_unknown_links_say_so(web, slack, cy):
    reply = web.get("/slack/link/" + "A" * 22)
    assert reply.status_code == 404 and "This link doesn&#39;t work" in reply.text


def test_another_browser_cannot_use_someone_elses_link(web, slack, cy):
    path = ask(web, slack)
    assert web.get(path).status_code == 200  # Cy opened it first
    bob = web.application.test_client()  # Bob, with the URL, in his own browser
    refused = bob.get(path)
    assert refused.status_code == 403 and "opened in another browser" in refused.text
    own_page = bob.get(ask(web, slack, user="UBOB"))  # a page (and a CSRF token) of his own
    stolen = save(bob, path, own_page, "correct horse 2", email="bob@smith.example")
    assert stolen.status_code == 403 and "opened in another browser" in stolen.text
    assert linked("UCY") is None and linked("UBOB") is None
    assert save(web, path, web.get(path), CANARY).status_code == 200  # Cy still can


def test_the_account_is_linked_to_the_slack_user_who_asked(web, slack, cy):
    path = ask(web, slack, user="UCY")
    reply = save(web, path, web.get(path), "correct horse 2", email="bob@smith.example")
    assert reply.status_code == 200
    assert linked("UCY").email == "bob@smith.example"
    assert linked("UBOB") is None


def test_a_post_without_csrf_or_from_another_site_is_refused(web, slack, cy):
    path = ask(web, slack)
    page = web.get(path)
    bare = web.post(path, data={"email": "cy@smith.example", "password": CANARY},
                    headers=SAME_ORIGIN)
    assert bare.status_code == 400
    assert save(web, path, page, CANARY, **{"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert linked("UCY") is None


# --- the seed's reasons and the throttle, on the page ----------------------------------------


@pytest.mark.parametrize("setup,reason", [
    ("suspended", "Your LedgerSync account is suspended"),
    ("lapsed", "Your LedgerSync subscription is not active"),
    ("elsewhere", "Smith &amp; Co is connected to another Slack workspace"),
])
def test_red_x_with_the_reason_and_the_fix(web, slack, cy, setup, reason):
    changes = {"suspended": {"suspended": True}, "lapsed": {"subscription_status": "canceled"},
               "elsewhere": {"slack_team_id": OTHER_TEAM}}[setup]
    Firm.update(**changes).execute()
    path = ask(web, slack)
    reply = save(web, path, web.get(path), CANARY)
    assert reply.status_code == 422 and "❌" in reply.text and reason in reply.text
    assert linked("UCY") is None
    assert "How to fix it:" in json.dumps(slack.dms("UCY"))
    assert web.get(path).status_code == 200  # not spent: fix it and try again


def test_no_clients_yet_connects_with_the_next_step(web, slack, sqlite_database):
    firms.create("Empty & Co", admin_email="e@empty.example", admin_password="correct horse 5",
                 admin_name="Ann Lee")
    path = ask(web, slack, user="UEMPTY")
    reply = save(web, path, web.get(path), "correct horse 5", email="e@empty.example")
    assert "Connected as Ann Lee (admin) at Empty &amp; Co" in reply.text
    assert "No clients set up yet" in reply.text
    assert "No clients set up yet" in json.dumps(slack.dms("UEMPTY"))


def test_repeated_failures_are_throttled(web, slack, cy):
    path = ask(web, slack)
    page = web.get(path)
    for _ in range(5):
        page = save(web, path, page, "wrong password")
    reply = save(web, path, page, CANARY)
    assert "Too many failed tries" in reply.text and linked("UCY") is None


# --- App Home's Connect, and the button's own click ----------------------------------------


def test_app_home_connect_opens_a_modal_with_the_same_button(web, slack, cy):
    assert button(web, slack, "connect_start", "", user="UCY").status_code == 200
    view = opened_view(slack)
    assert "submit" not in view and all(b["type"] != "input" for b in view["blocks"])
    path = _button_path(view["blocks"])
    assert save(web, path, web.get(path), CANARY).status_code == 200
    assert linked("UCY").id == cy.id


def test_the_url_buttons_click_is_acknowledged(web, slack, cy):
    assert button(web, slack, "link_page_opened", "", user="UCY").status_code == 200
    assert slack.of("respond:button") == []


# --- production: https behind a proxy; nothing secret kept ----------------------------------


@pytest.fixture
def behind_proxy(slack, sqlite_database):
    from web import create_app

    app = create_app(config.settings().with_(
        slack_signing_secret=SECRET, slack_bot_token="xoxb-test", slack_api_url=slack.api_url,
        redis_url="redis://127.0.0.1:1/0", proxy_hops=1))
    wiring.inline()
    outbound.reset_senders()
    return app.test_client()


def test_over_https_behind_a_proxy(behind_proxy, slack, cy):
    web = behind_proxy
    proxied = {"environ_base": {"REMOTE_ADDR": "10.0.0.2"},
               "headers": {"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"}}
    path = ask(web, slack)
    page = web.get(path, **proxied)
    assert "Strict-Transport-Security" in page.headers
    assert any(c.startswith("ls_link=") and "Secure" in c
               for c in page.headers.getlist("Set-Cookie"))
    data = {"csrf_token": csrf(page), "email": "cy@smith.example", "password": CANARY}
    done = web.post(path, data=data, environ_base=proxied["environ_base"],
                    headers={**proxied["headers"], **SAME_ORIGIN})
    assert done.status_code == 200 and "Connected as Cy Young" in done.text


def test_the_password_is_in_no_log_and_no_column_and_the_token_in_no_log(
        web, slack, cy, caplog):
    caplog.set_level(logging.DEBUG)
    path = ask(web, slack)
    token = path.rsplit("/", 1)[1]
    page = web.get(path)
    page = save(web, path, page, CANARY + "-wrong")
    assert save(web, path, page, CANARY).status_code == 200
    slack.wait_for("chat.postMessage", 2)
    logging.getLogger("werkzeug").info('127.0.0.1 "GET %s HTTP/1.1" 200', path)
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "/slack/link/" in logged  # the link was logged (by slack_sdk), masked
    assert CANARY not in logged and token not in logged
    for model in ALL_MODELS:
        rows = json.dumps(list(model.select().dicts()), default=str)
        assert CANARY not in rows, model.__name__
        assert token not in rows, model.__name__
    assert SlackLinkRequest.select().count() == 1
    assert CANARY not in json.dumps(slack.calls)  # nor anything sent to Slack



def test_connect_worked_out_on_a_worker_is_for_the_user_who_asked(slack, cy, redis_conn):
    """With Redis, `/ledgersync connect` is answered by a worker, like every command
    that opens no modal: the page it makes is still for the Slack user who asked."""

    from jobs import queues
    from web import create_app

    app = create_app(config.settings().with_(slack_signing_secret=SECRET,
                                             slack_bot_token="xoxb-test",
                                             slack_api_url=slack.api_url))
    try:
        web = app.test_client()
        command(web, slack, "connect", user="UCY")
        assert slack.of("respond:cmd") == [] and slack.of("views.open") == []
        LedgerSyncWorker([queues.queue("high", redis_conn)], connection=redis_conn).work(
            burst=True, with_scheduler=False)
        path = _button_path(slack.wait_for("respond:cmd")[0]["blocks"])
        assert save(web, path, web.get(path), CANARY).status_code == 200
        assert linked("UCY").id == cy.id
    finally:
        wiring.inline()


# --- core, on SQLite and PostgreSQL ----------------------------------------------------------


def test_a_link_is_spent_only_by_a_success_and_only_once(firm, clock):
    url = slack_accounts.ask(TEAM, "UANN")
    token = url.rsplit("/", 1)[1]
    assert len(token) >= 22 and SlackLinkRequest.get().digest != token
    assert slack_accounts.opened(token, "browser-a").user_id == "UANN"
    with pytest.raises(slack_accounts.LinkRefused) as other:
        slack_accounts.opened(token, "browser-b")
    assert other.value.kind == "other_browser"
    assert not slack_accounts.use(token, "browser-a", "ann@smith.example", "wrong").ok
    assert slack_accounts.use(token, "browser-a", "ann@smith.example", "correct horse battery").ok
    with pytest.raises(slack_accounts.LinkRefused) as used:
        slack_accounts.use(token, "browser-a", "ann@smith.example", "correct horse battery")
    assert used.value.kind == "used"
    late = slack_accounts.ask(TEAM, "UANN").rsplit("/", 1)[1]
    clock.shift(slack_accounts.LINK_TTL)
    with pytest.raises(slack_accounts.LinkRefused) as expired:
        slack_accounts.opened(late, "browser-a")
    assert expired.value.kind == "expired"

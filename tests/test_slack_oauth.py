"""Slack for every firm: installed by OAuth (Bolt's own flow) in each firm's
workspace, and every Web API call made with the token of the workspace it talks to
— commands, notices (from a real worker too), the client ↔ Slack thread bridge,
bulk progress. Signed requests into the real Flask app; the Slack stand-in answers
`oauth.v2.access` and records each call's bearer token."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest

import wiring
from core.invitations import client_texts, clients
from core.messaging import notices, outbound
from core.platform import config
from core.records import BulkRun, Client, Firm, Message, SlackInstall
from core.reports import doctor
from tests.conftest import make_settings
from tests.helpers import start_worker, stop, wait_for, worker_env
from tests.slack_fixtures import OTHER_TEAM
from tests.slack_requests import SECRET, command, signed
from tests.slack_standin import TEAM

CLIENT_ID, CLIENT_SECRET = "1111.2222", "oauth-client-secret-for-tests"
PUBLIC = "https://connect.example.com"  # PUBLIC_BASE_URL: the state cookie is Secure
SMITH_TOKEN, OTHER_TOKEN = "xoxb-smith-0001", "xoxb-other-0002"


def oauth_settings(slack, **changes):
    return config.settings().with_(
        slack_signing_secret=SECRET, slack_client_id=CLIENT_ID,
        slack_client_secret=CLIENT_SECRET, slack_api_url=slack.api_url,
        redis_url="redis://127.0.0.1:1/0", **changes)


@pytest.fixture
def app(sqlite_database, slack, smith, other):
    from web import create_app

    flask_app = create_app(oauth_settings(slack))
    wiring.inline()
    outbound.reset_senders()
    return flask_app.test_client()


def install(web, slack, code: str, team: str, token: str, **rotation) -> None:
    """An admin of `team` clicks "Add to Slack" and approves in Slack."""
    slack.workspace(code, team, token=token, **rotation)
    page = web.get(f"{PUBLIC}/slack/install")
    assert page.status_code == 200 and "Add to Slack" in page.text
    href = html.unescape(re.search(r'href="(https://slack.com/oauth/v2/authorize[^"]+)"',
                                   page.text).group(1))
    query = parse_qs(urlparse(href).query)
    assert query["client_id"] == [CLIENT_ID]
    assert "chat:write" in query["scope"][0].split(",")
    done = web.get(f"{PUBLIC}/slack/oauth_redirect?code={code}&state={query['state'][0]}")
    assert done.status_code == 200, done.text
    assert "LedgerSync is installed" in done.text


@pytest.fixture
def installed(app, slack):
    install(app, slack, "code-smith", TEAM, SMITH_TOKEN)
    install(app, slack, "code-other", OTHER_TEAM, OTHER_TOKEN)
    slack.forget()  # the installers' welcomes
    return app


def event(web, team: str, payload: dict):
    body = {"type": "event_callback", "team_id": team, "api_app_id": "A1",
            "event_id": f"Ev{abs(hash(json.dumps(payload))) % 10**8}", "event_time": 1,
            "event": payload}
    return signed(web, json.dumps(body), headers={"Content-Type": "application/json"})


def installed_in(team: str) -> bool:
    return SlackInstall.select().where(SlackInstall.team_id == team).exists()


def tell(firm, text: str):
    """A firm notice, written and dispatched as core does it."""
    notice = notices.write(firm, "expired", text, dedupe_key=f"test:{text}")
    outbound.dispatch(notice)
    return notice


def posted_with(slack, token: str) -> list[dict]:
    """Every chat.postMessage made with `token`."""
    with slack._lock:
        pairs = list(zip(slack.calls, slack.bearers, strict=True))
    return [params for (name, params), (_, used) in pairs
            if name == "chat.postMessage" and used == token]


def test_each_workspace_is_installed_with_its_token_sealed(installed):
    rows = list(SlackInstall.select().order_by(SlackInstall.team_id))
    assert [r.team_id for r in rows] == sorted([TEAM, OTHER_TEAM])
    for row in rows:
        values = json.dumps({f: str(getattr(row, f)) for f in row._meta.fields})
        assert SMITH_TOKEN not in values and OTHER_TOKEN not in values
        assert row.bot_token_sealed.startswith("gAAAA")  # Fernet


def test_a_replayed_or_forged_state_installs_nothing(app, slack):
    slack.workspace("code-x", TEAM, token="xoxb-x")
    page = app.get(f"{PUBLIC}/slack/oauth_redirect?code=code-x&state=made-up")
    assert page.status_code == 400 and "not installed" in page.text
    assert SlackInstall.select().count() == 0


def test_the_install_page_has_the_pages_strict_policy(app):
    policy = app.get(f"{PUBLIC}/slack/install").headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy


def test_the_state_cookie_is_same_site_lax_secure_and_http_only(app, slack):
    [cookie] = app.get(f"{PUBLIC}/slack/install").headers.getlist("Set-Cookie")
    attributes = {part.strip().partition("=")[0].lower() for part in cookie.split(";")}
    assert cookie.startswith("slack-app-oauth-state=")
    assert {"secure", "httponly", "samesite"} <= attributes and "SameSite=Lax" in cookie
    install(app, slack, "code-smith", TEAM, SMITH_TOKEN)  # Slack's redirect back still works
    assert installed_in(TEAM)


def test_commands_use_their_own_workspaces_token(installed, slack):
    command(installed, slack, "notify <#C0SMITH|tax>", user="UANN", team=TEAM)
    command(installed, slack, "notify <#C0OTHER|tax>", user="UOLGA", team=OTHER_TEAM)
    slack.wait_for("respond:cmd", 2)  # answered on Bolt's listener threads
    assert [p["channel"] for p in posted_with(slack, SMITH_TOKEN)] == ["C0SMITH"]
    assert [p["channel"] for p in posted_with(slack, OTHER_TOKEN)] == ["C0OTHER"]
    assert Firm.get(Firm.slack_team_id == TEAM).notify_channel == "C0SMITH"


def test_notices_and_the_thread_bridge_use_the_firms_token(installed, slack, smith, other):
    tell(smith, "Maria's link expired.")
    tell(other, "Olga's link expired.")
    assert "Maria's link expired." in posted_with(slack, SMITH_TOKEN)[0]["text"]
    assert "Olga's link expired." in posted_with(slack, OTHER_TOKEN)[0]["text"]
    Firm.update(notify_channel="C0SMITH").where(Firm.id == smith.id).execute()
    client_texts.received(
        client_texts.Inbound("SM0001", "+12125550134", "+15005550006", "Is it safe?"))
    [thread] = [p for p in posted_with(slack, SMITH_TOKEN) if p["channel"] == "C0SMITH"]
    assert "Maria Gonzalez texted" in thread["text"]
    ts = slack.calls[-1][1].get("ts") or client_texts.thread_of(
        Client.get(Client.name == "Maria Gonzalez").id, "C0SMITH").ts
    reply = event(installed, TEAM, {"type": "message", "channel": "C0SMITH", "user": "UANN",
                                    "text": "Yes, it is us", "ts": "1700000001.000200",
                                    "thread_ts": ts})
    assert reply.status_code == 200
    slack.wait_for("reactions.add")
    assert slack.tokens_used("reactions.add") == [SMITH_TOKEN]
    assert "Yes, it is us" in Message.get(Message.kind == "reply").body


def test_bulk_progress_is_posted_and_updated_with_the_firms_token(installed, slack, smith):
    from bot import progress
    from core.invitations import bulk_plan

    plan = bulk_plan.prepare(smith, "not_invited")
    assert progress.post(plan.run, "CWORK")
    progress.report(plan.run.id, force=True)
    assert [p["channel"] for p in posted_with(slack, SMITH_TOKEN)] == ["CWORK"]
    assert slack.tokens_used("chat.update") == [SMITH_TOKEN]
    assert BulkRun.get_by_id(plan.run.id).slack_ts


def test_uninstalled_workspace_gets_nothing_more_while_the_other_works(installed, slack,
                                                                        smith, other):
    answer = event(installed, OTHER_TEAM, {"type": "app_uninstalled"})
    assert answer.status_code == 200
    assert wait_for(lambda: not installed_in(OTHER_TEAM))  # on Bolt's listener thread
    before = len(slack.calls)
    notice = tell(other, "Olga's link expired.")
    assert notice.refreshed().status == "canceled"
    assert "isn't installed" in notice.refreshed().error_message
    command(installed, slack, "status olga", user="UOLGA", team=OTHER_TEAM)
    [refused] = slack.wait_for("respond:cmd")
    assert "no longer available" in refused["text"]  # Bolt's own answer: reinstall
    assert OTHER_TOKEN not in [t for _, t in slack.bearers[before:]]
    check = next(c for c in doctor.run(other.refreshed()) if not c.ok)
    assert "not installed in your Slack workspace" in check.text
    assert "/slack/install" in check.fix
    tell(smith, "Maria's link expired.")
    assert posted_with(slack, SMITH_TOKEN)
    listed, checked = ledgersync("firm", "list"), ledgersync("--firm", "Other LLP", "doctor")
    assert f"Other LLP  (America/New_York; Slack {OTHER_TEAM} removed)" in listed
    assert f"Smith & Co  (America/New_York; Slack {TEAM})" in listed
    assert "❌ LedgerSync is not installed in your Slack workspace (it was removed on" in checked


def ledgersync(*args: str) -> str:
    """The `ledgersync` command as an admin runs it, on this test's database."""
    env = {**os.environ, "DATABASE_URL": config.settings().database_url,
           "SECRET_KEY": config.settings().secret_key, "SLACK_CLIENT_ID": CLIENT_ID,
           "SLACK_CLIENT_SECRET": CLIENT_SECRET, "REDIS_URL": "redis://127.0.0.1:1/0"}
    done = subprocess.run([sys.executable, "-m", "cli", *args], env=env, capture_output=True,
                          text=True, timeout=60, check=True)
    return done.stdout


def test_revoked_bot_token_forgets_the_workspace(installed, slack):
    event(installed, TEAM, {"type": "tokens_revoked", "tokens": {"bot": ["UBOT"]}})
    assert wait_for(lambda: not installed_in(TEAM))
    assert installed_in(OTHER_TEAM)


def test_a_rotating_token_is_refreshed_before_it_expires(app, slack, smith, clock):
    install(app, slack, "code-rot", TEAM, "xoxe.xoxb-first", refresh="xoxe-1-first",
            expires_in=12 * 3600)
    slack.rotation("xoxe-1-first", token="xoxe.xoxb-second", next_refresh="xoxe-1-second",
                   team=TEAM)
    slack.forget()  # the installer's welcome
    tell(smith, "One.")
    assert slack.tokens_used("chat.postMessage") == ["xoxe.xoxb-first"]
    clock.shift(timedelta(hours=10, minutes=30))  # 90 minutes left: refresh now
    tell(smith, "Two.")
    command(app, slack, "help", user="UANN", team=TEAM)
    slack.wait_for("respond:cmd")
    tell(smith, "Three.")
    refreshes = [p for p in slack.of("oauth.v2.access") if p.get("grant_type") == "refresh_token"]
    assert len(refreshes) == 1 and refreshes[0]["refresh_token"] == "xoxe-1-first"
    assert slack.tokens_used("chat.postMessage") == ["xoxe.xoxb-first", "xoxe.xoxb-second",
                                                      "xoxe.xoxb-second"]
    row = SlackInstall.get(SlackInstall.team_id == TEAM)
    assert "xoxe.xoxb-second" not in row.bot_token_sealed


@pytest.mark.slow
def test_notices_from_a_real_worker_use_each_workspaces_token(installed, slack, smith, other,
                                                              redis_conn, tmp_path):

    settings = config.settings().with_(redis_url=make_settings("sqlite://").redis_url)
    env = worker_env(settings, SLACK_CLIENT_ID=CLIENT_ID, SLACK_CLIENT_SECRET=CLIENT_SECRET,
                     SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=slack.api_url)
    worker = start_worker(env, tmp_path, "worker")
    try:
        assert wiring.use_queue(settings.with_(slack_client_id=CLIENT_ID,
                                             slack_client_secret=CLIENT_SECRET))
        clients.add(other, "Otto Client", phone="2125550177")
        tell(smith, "From the worker: Smith.")
        tell(other, "From the worker: Other.")
        assert wait_for(lambda: len(slack.of("chat.postMessage")) >= 2), \
            (tmp_path / "worker.log").read_text()[-3000:]
    finally:
        stop(worker)
        wiring.inline()
    assert [p["text"] for p in posted_with(slack, SMITH_TOKEN)] == ["From the worker: Smith."]
    assert [p["text"] for p in posted_with(slack, OTHER_TOKEN)] == ["From the worker: Other."]


def test_the_manifest_asks_for_what_the_app_uses():
    from pathlib import Path

    import yaml

    from bot.installations import SCOPES

    manifest = yaml.safe_load((Path(__file__).parent.parent / "slack-manifest.yml").read_text())
    assert manifest["oauth_config"]["scopes"]["bot"] == list(SCOPES)
    assert manifest["oauth_config"]["redirect_urls"] == [
        "https://connect.example.com/slack/oauth_redirect"]
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    assert {"app_home_opened", "app_uninstalled", "tokens_revoked"} <= set(events)
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True


def test_no_token_or_code_in_any_log_line(app, slack, smith, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    install(app, slack, "code-secret-4242", TEAM, SMITH_TOKEN)
    tell(smith, "Logged?")
    app.get(f"{PUBLIC}/slack/oauth_redirect?code=code-secret-4242&state=stale")
    assert posted_with(slack, SMITH_TOKEN)
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "slack_sdk" in {r.name.split(".")[0] for r in caplog.records}  # it did log
    assert SMITH_TOKEN not in logged and "code-secret-4242" not in logged
    assert CLIENT_SECRET not in logged


def test_the_installer_is_welcomed_with_the_connect_button(app, slack):
    install(app, slack, "code-smith", TEAM, SMITH_TOKEN)
    install(app, slack, "code-other", OTHER_TEAM, OTHER_TOKEN)
    [welcome] = [p for p in posted_with(slack, SMITH_TOKEN) if p["channel"] == "UINSTALLER"]
    assert "Connect your LedgerSync account" in welcome["text"]
    assert f"{PUBLIC}/slack/link/" in json.dumps(welcome["blocks"])
    assert len(posted_with(slack, OTHER_TOKEN)) == 1  # one welcome per install


def test_a_reinstall_by_someone_already_connected_is_not_welcomed_again(app, slack, smith):
    install(app, slack, "code-again", TEAM, SMITH_TOKEN, installer="UANN")  # linked already
    assert posted_with(slack, SMITH_TOKEN) == []

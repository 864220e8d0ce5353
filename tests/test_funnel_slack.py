"""The funnel and the digest in Slack, end to end: signed requests into the real app, the
Slack stand-in recording what was posted. `/ledgersync funnel [30d]` (bars, names, the
follow-up buttons), support's view across firms, the Monday digest in the notices
channel, and a follow-up button — from the digest and from the Home — that prepares a
bulk run whose confirmation sends, through the bulk path."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from core.invitations import clients, invites, links
from core.platform import tokens
from core.records import BulkRun, Client, Firm, Message, SupportStaff
from jobs import digest as digest_jobs
from tests.conftest import T0
from tests.helpers import slack_listeners_idle
from tests.slack_requests import command, event, interaction, said
from tests.slack_standin import TEAM

MONDAY_9 = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)  # 9:00 in New York
SUPPORT_TEAM = "TSUPPORT"


@pytest.fixture
def stalled(smith, clock):
    """Maria opened her link and let it lapse; "<!channel> Dan" never opened his."""
    maria = Client.get(Client.name == "Maria Gonzalez")
    dan = clients.add(smith, "<!channel> Dan", phone="2125550177")
    maria_link = invites.send(maria, "sms").invite
    invites.send(dan, "sms")
    clock.shift(timedelta(hours=1))
    links.opened(tokens.unseal(maria_link.token_sealed))
    clock.move_to(T0 + timedelta(days=5, minutes=1))
    for due in list(invites.expiry_due()):
        invites.expire(due.id)
    return smith


def blocks_of(posted: dict) -> list[dict]:
    blocks = posted["blocks"]
    return json.loads(blocks) if isinstance(blocks, str) else blocks


def follow_up_buttons(blocks: list[dict]) -> dict[str, str]:
    return {e["text"]["text"]: e["value"] for b in blocks if b["type"] == "actions"
            for e in b["elements"] if e["action_id"] == "funnel_follow_up"}


def click(web, slack, action_id: str, value, *, user: str = "UANN", team: str = TEAM):
    return interaction(web, {
        "type": "block_actions", "team": {"id": team}, "user": {"id": user},
        "channel": {"id": "C0ALERTS"}, "trigger_id": "t", "api_app_id": "A1",
        "response_url": slack.response_url("button"), "container": {"type": "message"},
        "actions": [{"type": "button", "action_id": action_id, "value": str(value),
                     "block_id": "b", "action_ts": "1"}]})


def invites_sent() -> int:
    return Message.select().where(Message.kind == "invite").count()


def test_the_funnel_command_shows_bars_names_and_follow_ups(web, slack, stalled):
    command(web, slack, "funnel")
    answer = slack.wait_for("respond:cmd")[-1]
    text = json.dumps(answer["blocks"], ensure_ascii=False)
    assert "invite funnel, last 30 days: *2* clients invited" in text
    assert "Invited         2  ████████████████████ 100%" in text
    assert "Opened          1  ██████████            50%" in text
    assert "*Opened but didn't accept* — 1: Maria Gonzalez" in text
    assert "*Expired unopened* — 1: &lt;!channel&gt; Dan" in text  # pings nobody
    assert "<!channel>" not in text
    assert set(follow_up_buttons(answer["blocks"])) == {
        "Remind the 1 who opened but didn't accept", "Resend to the 1 whose links expired"}
    command(web, slack, "funnel 2026-10-01 2026-10-31")
    assert "nobody was invited" in said(slack, 2)
    command(web, slack, "funnel soon")
    assert "'soon' is not a period" in said(slack, 3)


def test_the_digest_comes_monday_at_nine_and_its_button_sends_through_the_bulk_path(
        web, slack, stalled, clock):
    Firm.update(notify_channel="C0ALERTS").execute()
    clock.move_to(MONDAY_9)
    assert digest_jobs.due() == "1 digest sent"
    assert digest_jobs.due() == "0 digests sent"  # a second clock
    posted = [p for p in slack.wait_for("chat.postMessage") if "digest" in p["text"]]
    assert len(posted) == 1 and posted[0]["channel"] == "C0ALERTS"
    blocks = blocks_of(posted[0])
    text = json.dumps(blocks, ensure_ascii=False)
    assert "*Weekly digest for Smith &amp; Co* — Mon 23 Nov – Sun 29 Nov" in text
    assert "*2* clients invited (2 links sent) · *0* banks connected or restored" in text
    assert "&lt;!channel&gt; Dan" in text and "<!channel>" not in text
    value = follow_up_buttons(blocks)["Resend to the 1 whose links expired"]
    before = invites_sent()
    click(web, slack, "funnel_follow_up", value)
    confirm = slack.wait_for("respond:button")[-1]
    shown = json.dumps(confirm, ensure_ascii=False)
    assert "From the funnel, last 30 days: the clients whose link expired unopened" in shown
    assert "*1* will get an invite: 1 by SMS" in shown
    assert invites_sent() == before  # nothing goes out from the click alone
    run = BulkRun.select().order_by(BulkRun.id.desc()).first()
    click(web, slack, "bulk_confirm", run.id)
    slack.wait_for("chat.update")
    new = Message.select().where(Message.kind == "invite").order_by(Message.id.desc()).first()
    assert invites_sent() == before + 1 and new.client.name == "<!channel> Dan"
    assert slack_listeners_idle(web)


def test_another_firms_staff_get_their_own_firm_from_the_same_button(web, slack, stalled,
                                                                    other):
    command(web, slack, "funnel")
    value = follow_up_buttons(slack.wait_for("respond:cmd")[-1]["blocks"])[
        "Resend to the 1 whose links expired"]
    click(web, slack, "funnel_follow_up", value, user="UOLGA", team="T0OTHER")
    assert "Nobody to invite" in json.dumps(slack.wait_for("respond:button")[-1])
    assert BulkRun.select().where(BulkRun.firm == stalled).count() == 0
    click(web, slack, "funnel_follow_up", "not json")
    assert "out of date" in json.dumps(slack.wait_for("respond:button", 2)[-1])
    assert slack_listeners_idle(web)


def test_support_sees_every_firm_and_failures_by_reason(web, slack, stalled, other):
    SupportStaff.create(email="sam@ledgersync.com", slack_team_id=SUPPORT_TEAM,
                        slack_user_id="USAM")
    invites.send(Client.get(Client.name == "Olga Client"), "email")
    command(web, slack, "support funnel", user="USAM", team=SUPPORT_TEAM)
    text = said(slack).encode().decode("unicode_escape")
    assert "Every firm's funnel, last 30 days" in text
    assert "*Smith & Co* — 2 invited · 0% connected" in text.replace("&amp;", "&")
    assert "*Other LLP* — 1 invited" in text
    assert "Delivery failures, last 24 h" in text
    command(web, slack, 'support funnel firm:"Smith & Co"', user="USAM", team=SUPPORT_TEAM)
    one = said(slack, 2)
    assert "Maria Gonzalez" in one and "funnel_follow_up" not in one  # read-only
    command(web, slack, "support funnel")
    assert "Only LedgerSync support sees every firm" in said(slack, 3)


def test_the_home_shows_the_funnel_and_its_button_answers_by_direct_message(
        web, slack, stalled):
    response = event(web, {"type": "app_home_opened", "user": "UANN", "channel": "D1",
                           "tab": "home", "event_ts": "1700000000.000100"})
    assert response.status_code == 200
    view = slack.wait_for("views.publish")[-1]["view"]
    view = json.loads(view) if isinstance(view, str) else view
    text = json.dumps(view["blocks"], ensure_ascii=False)
    assert "*Funnel, last 30 days* — 2 invited, 0 connected (0%)" in text
    value = follow_up_buttons(view["blocks"])["Remind the 1 who opened but didn't accept"]
    before = len(slack.of("chat.postMessage"))  # (the expiry notices came by DM too)
    interaction(web, {
        "type": "block_actions", "team": {"id": TEAM}, "user": {"id": "UANN", "team_id": TEAM},
        "trigger_id": "t", "api_app_id": "A1", "container": {"type": "view"},
        "view": {"id": "VHOME", "type": "home", "callback_id": "", "private_metadata": ""},
        "actions": [{"type": "button", "action_id": "funnel_follow_up", "value": value,
                     "block_id": "b", "action_ts": "1"}]})
    dm = slack.wait_for("chat.postMessage", before + 1)[-1]
    assert dm["channel"] == "UANN" and "*1* will get an invite" in json.dumps(dm["blocks"])
    slack.wait_for("views.publish", 2)  # and the Home again, fresh
    assert slack_listeners_idle(web)

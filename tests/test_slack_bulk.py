"""Bulk invites from Slack: the confirmation, Send / Cancel / Retry failed, and the
progress message updated in place — signed requests into the real Flask app, the
Slack stand-in recording what was posted. (With no Redis here, the run is worked
inline; the paced, multi-worker run is in test_bulk_workers.py.)"""

from __future__ import annotations

import json

import pytest

from core.invitations import clients
from core.messaging import optouts
from core.records import BulkRun, Message, SupportStaff
from tests.slack_fixtures import OTHER_TEAM
from tests.slack_requests import command, interaction, opened_view, said, submit
from tests.slack_standin import TEAM


@pytest.fixture
def roster(smith, clock):
    clients.add(smith, "Ann Texter", phone="2125550101")
    clients.add(smith, "Bo Mailer", email="bo@example.com")
    clients.add(smith, "Cy Nothing")
    clients.add(smith, "Di Stopped", phone="2125550104")
    optouts.opt_out("+12125550104", "test")
    return smith


def click(web, slack, action_id: str, value, *, user: str = "UANN", team: str = TEAM):
    return interaction(web, {
        "type": "block_actions", "team": {"id": team}, "user": {"id": user},
        "channel": {"id": "CWORK"}, "trigger_id": "t", "api_app_id": "A1",
        "response_url": slack.response_url("button"), "container": {"type": "message"},
        "actions": [{"type": "button", "action_id": action_id, "value": str(value),
                     "block_id": "b", "action_ts": "1"}]})


def shown(posted) -> str:
    return json.dumps(posted, ensure_ascii=False)


def run_id() -> int:
    return BulkRun.select().order_by(BulkRun.id.desc()).first().id


def invites_sent() -> int:
    return Message.select().where(Message.kind == "invite").count()


def test_the_confirmation_counts_and_explains_before_anything_goes_out(web, slack, roster):
    command(web, slack, "invite-all")
    text = said(slack)
    assert "*3* will get an invite: 2 by SMS, 1 by email" in text  # Maria, Ann; Bo
    assert "Skipped 2:" in text and "no mobile number or email address (1): Cy Nothing" in text
    assert "opted out (1): Di Stopped" in text
    assert "Send 3 invites" in text and "about 2 s at the sender's rate (1 text/s)" in text
    assert invites_sent() == 0


def test_send_posts_progress_and_updates_it_to_the_summary(web, slack, roster):
    command(web, slack, "invite all sms")
    said(slack)
    click(web, slack, "bulk_confirm", run_id())
    posted = slack.wait_for("chat.postMessage")[-1]
    assert posted["channel"] == "CWORK" and "Bulk invite #" in posted["text"]
    final = slack.wait_for("chat.update")[-1]
    assert final["ts"] and "Done. Sent 2 of 2 · 0 failed" in shown(final["blocks"])
    assert invites_sent() == 2
    click(web, slack, "bulk_confirm", run_id())  # a double click
    slack.wait_for("respond:button", 2)
    assert "was already" in shown(slack.of("respond:button")[-1])
    assert invites_sent() == 2


def test_cancel_on_the_confirmation_sends_nothing(web, slack, roster):
    command(web, slack, "invite-all")
    said(slack)
    click(web, slack, "bulk_cancel", run_id())
    reply = shown(slack.wait_for("respond:button")[-1])
    assert "Canceled" in reply and "3 not sent" in reply
    click(web, slack, "bulk_confirm", run_id())
    slack.wait_for("respond:button", 2)
    assert invites_sent() == 0


def test_another_firm_cannot_start_or_cancel_our_run(web, slack, roster, other):
    command(web, slack, "invite-all")
    said(slack)
    ours = run_id()
    click(web, slack, "bulk_confirm", ours, user="UOLGA", team=OTHER_TEAM)
    click(web, slack, "bulk_cancel", ours, user="UOLGA", team=OTHER_TEAM)
    answers = shown(slack.wait_for("respond:button", 2))
    assert answers.count(":x: No such bulk run") == 2
    assert BulkRun.get_by_id(ours).status == "confirming" and invites_sent() == 0


def test_support_and_staff_without_the_right_cannot_invite_all(web, slack, roster):
    SupportStaff.create(email="sam@ledgersync.com", slack_team_id=TEAM, slack_user_id="USAM")
    command(web, slack, "invite-all", user="USAM")
    assert "LedgerSync support can't invite" in said(slack)


def test_a_pasted_list_reports_unknown_and_ambiguous_names(web, slack, roster):
    clients.add(roster, "Ann Other", phone="2125550111")
    command(web, slack, "invite-all list")
    submit(web, "bulk_list_modal", {"names": "Maria Gonzalez\nNobody Here\nAnn"},
           metadata=opened_view(slack)["private_metadata"])
    text = said(slack)
    assert "*1* will get an invite" in text
    assert "unknown name (1): Nobody Here" in text
    assert "ambiguous name (2 clients match) (1): Ann" in text


def test_bulk_shows_the_latest_run(web, slack, roster):
    command(web, slack, "invite-all")
    said(slack)
    click(web, slack, "bulk_confirm", run_id())
    slack.wait_for("chat.update")
    command(web, slack, "bulk")
    assert "Done. Sent 3 of 3" in said(slack, 2).encode().decode("unicode_escape")
    command(web, slack, "bulk 99999")
    assert "No such bulk run" in said(slack, 3)


def test_retry_failed_sends_only_the_failed_ones(web, slack, roster, twilio, twilio_settings):
    twilio.fail_next(1, status=400, code=21408)  # Ann's (the first text): region refused
    command(web, slack, "invite-all sms")
    said(slack)
    click(web, slack, "bulk_confirm", run_id())
    final = shown(slack.wait_for("chat.update")[-1]["blocks"])
    assert "Sent 1 of 2 · 1 failed" in final and "Ann Texter: texts to that country" in final
    assert "bulk_retry" in final
    click(web, slack, "bulk_retry", run_id())
    slack.wait_for("chat.update", 2)
    assert len(twilio.sent("+12125550101")) == 1 and len(twilio.sent("+12125550134")) == 1

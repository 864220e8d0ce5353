"""The Slack app: signed requests into the real Flask app, Slack's Web API played by
a local stand-in that records every call."""

from __future__ import annotations

import json
import time
from datetime import timedelta

from core.firms import access
from core.invitations import clients, invites, links
from core.platform import tokens
from core.records import Client, Event, Firm, Invite, Message, SupportStaff
from tests.helpers import slack_listeners_idle
from tests.slack_fixtures import OTHER_TEAM
from tests.slack_requests import button, command, opened_view, said, signed, submit
from tests.slack_standin import TEAM


def test_help_and_unknown_commands(web, slack, smith):
    assert command(web, slack, "help").status_code == 200
    assert "/ledgersync invite" in said(slack)
    command(web, slack, "frobnicate now")
    assert "Unknown command `frobnicate`" in said(slack, 2)


def test_a_user_not_connected_is_told_how(web, slack, smith):
    command(web, slack, "status maria", user="USTRANGER")
    assert "Connect your LedgerSync account first: /ledgersync connect" in said(slack)


def test_connect_answers_with_a_one_time_page_and_never_a_modal(web, slack, smith):
    """The page itself: tests/test_slack_link.py."""
    command(web, slack, "connect", user="UCY")
    answer = slack.wait_for("respond:cmd")[0]
    assert answer["response_type"] == "ephemeral"
    text = json.dumps(answer)
    assert "https://connect.example.com/slack/link/" in text and "10 minutes" in text
    assert slack.of("views.open") == []
    assert access.resolve(TEAM, "UCY").kind == "nobody"


def test_disconnect(web, slack, smith):
    command(web, slack, "disconnect")
    assert "Disconnected" in said(slack)
    assert access.resolve(TEAM, "UANN").kind == "nobody"


def test_invite_by_sms_then_double_submit_sends_once(web, slack, smith):
    command(web, slack, "invite sms \"Maria Gonzalez\"")
    assert "Invited *Maria Gonzalez* by SMS at (212) 555-0134" in said(slack)
    command(web, slack, "invite maria sms", headers={"X-Slack-Retry-Num": "1"})
    assert "already has a link" in said(slack, 2)
    assert Message.select().where(Message.kind == "invite").count() == 1


def test_ambiguous_names_are_answered_with_buttons(web, slack, smith):
    clients.add(smith, "John Smith", phone="2125550141")
    jane = clients.add(smith, "Jane Smith", phone="2125550142")
    command(web, slack, "invite smith sms")
    text = said(slack)
    assert "2 clients match" in text and "pick_client" in text
    button(web, slack, "pick_client", json.dumps({"cmd": "invite", "client": jane.id,
                                                  "channel": "sms"}))
    assert "Invited *Jane Smith*" in json.dumps(slack.wait_for("respond:button"))


def test_invite_opens_a_modal_when_the_channel_is_open(web, slack, smith):
    both = clients.add(smith, "Both Ways", phone="2125550143", email="both@example.com")
    command(web, slack, "invite both ways")
    view = opened_view(slack)
    assert view["callback_id"] == "invite_modal"
    submit(web, "invite_modal", {"channel": "email", "purpose": "reconnect", "banks": "Chase"},
           metadata=view["private_metadata"])
    assert "Invited *Both Ways* by email" in json.dumps(slack.wait_for("respond:cmd"))
    invite = Invite.get(Invite.client == both)
    assert (invite.channel, invite.purpose, invite.banks) == ("email", "reconnect", ["Chase"])


def test_status_card_and_its_buttons_update_in_place(web, slack, smith):
    maria = Client.get(Client.name == "Maria Gonzalez")
    invites.send(maria, "sms")
    command(web, slack, "status (212) 555-0134")
    card = said(slack)
    assert "Invited, not accepted yet" in card and "Invite SMS to (212) 555-0134: delivered" in card
    assert all(b in card for b in ('"resend"', '"remind"', '"revoke"'))
    button(web, slack, "remind", maria.id)
    posted = slack.wait_for("respond:button")[0]
    assert posted["replace_original"] is True and "Reminder SMS" in json.dumps(posted)
    button(web, slack, "revoke", maria.id)
    assert "Invite revoked" in json.dumps(slack.wait_for("respond:button", 2)[1])
    # The stand-in records the answer before the listener that posted it has returned:
    # let it finish before the test's database and stand-in go away.
    assert slack_listeners_idle(web)


def test_resend_after_this_isnt_me_warns_and_sends_only_when_told_to(web, slack, smith):
    maria = Client.get(Client.name == "Maria Gonzalez")
    links.disown(tokens.unseal(invites.send(maria, "sms").invite.token_sealed))
    button(web, slack, "resend", maria.id)  # a status card's Resend, or a notice's
    warning = slack.wait_for("respond:button")[0]
    assert warning["replace_original"] is False  # the card stays as it was
    assert warning["blocks"][0]["text"]["text"].startswith(
        ":warning: Someone who opened the last link sent to (212) 555-0134 said it isn't "
        "Maria Gonzalez. Check Maria Gonzalez's number with them before sending anything")
    anyway = warning["blocks"][1]["elements"][0]
    assert anyway["text"]["text"] == "Send anyway"
    command(web, slack, "resend maria")
    assert "said it isn't Maria Gonzalez" in said(slack) and "Send anyway" in said(slack)
    assert Message.select().where(Message.kind == "invite").count() == 1  # nothing sent
    button(web, slack, anyway["action_id"], anyway["value"])  # checked with Maria
    done = slack.wait_for("respond:button", 2)[1]
    assert done["replace_original"] is True
    assert "Sent a new link to *Maria Gonzalez* by SMS at (212) 555-0134" in json.dumps(done)
    assert Message.select().where(Message.kind == "invite").count() == 2
    assert slack_listeners_idle(web)


def test_pending_and_clients_paginate(web, slack, smith):
    for i in range(45):
        client = clients.add(smith, f"Client {i:02}", email=f"c{i}@example.com")
        invites.send(client, "email")
    command(web, slack, "pending")
    first = said(slack)
    assert "45 open invites" in first and "show_more" in first
    command(web, slack, "clients client 4")
    assert "Client 40" in said(slack, 2)


def test_notify_is_for_admins(web, slack, smith):
    access.connect(TEAM, "UBOB", "bob@smith.example", "correct horse 2")
    command(web, slack, "notify <#C0ALERTS|alerts>", user="UBOB")
    assert "the staff role can't choose the notices channel" in said(slack)
    command(web, slack, "notify <#C0ALERTS|alerts>")
    assert "Firm notices now go to <#C0ALERTS>" in said(slack, 2)
    assert Firm.get_by_id(smith.id).notify_channel == "C0ALERTS"


def test_doctor_answers_each_point(web, slack, smith):
    command(web, slack, "doctor")
    text = said(slack)
    assert ":white_check_mark: Subscription is active" in text
    assert ":x: No channel chosen: notices go to admins by direct message" in text
    assert ":x: No client has a bank connected yet" in text


def test_client_add_modal_and_its_errors(web, slack, smith):
    command(web, slack, "client add")
    view = opened_view(slack)
    bad = submit(web, "client_add_modal", {"name": "Bad Phone", "phone": "555-1234"},
                 metadata=view["private_metadata"]).json
    assert bad["response_action"] == "errors" and "phone" in bad["errors"]
    # The field comes from core (InvalidInput.field), not guessed from the words.
    worded = submit(web, "client_add_modal", {"name": "Worded", "client_email": "my phone number"},
                    metadata=view["private_metadata"]).json
    assert list(worded["errors"]) == ["client_email"]
    twice = submit(web, "client_add_modal", {"name": "Maria Gonzalez"},
                   metadata=view["private_metadata"]).json
    assert list(twice["errors"]) == ["name"] and "already a client" in twice["errors"]["name"]
    assert "/ledgersync client edit Maria Gonzalez" in twice["errors"]["name"]
    submit(web, "client_add_modal", {"name": "Good Co", "phone": "(415) 555-2671",
                                     "banks": "Chase\nAlly"}, metadata=view["private_metadata"])
    assert "Added *Good Co*" in json.dumps(slack.wait_for("respond:cmd"))
    assert clients.find(smith, "good co").banks == ["Chase", "Ally"]


def test_client_edit_modal_changes_the_client_and_errors_name_the_fix(web, slack, smith):
    """`/ledgersync client edit maria`: her details in a form; a bad number is shown
    under its field; saved, the change is hers. An invite by email before she has one
    says so and names `/ledgersync client edit`."""
    maria = clients.find(smith, "maria")
    Client.update(email=None).where(Client.id == maria.id).execute()
    command(web, slack, "invite maria email")
    refused = said(slack)
    assert "has no email address" in refused
    assert "`/ledgersync client edit Maria Gonzalez`" in refused
    command(web, slack, "client edit maria")
    view = opened_view(slack)
    values = {b["block_id"]: b["element"].get("initial_value") for b in view["blocks"]}
    assert values["name"] == "Maria Gonzalez" and values["phone"] == "(212) 555-0134"
    bad = submit(web, "client_edit_modal", {"name": "Maria Gonzalez", "phone": "555-1234"},
                 metadata=view["private_metadata"]).json
    assert bad["response_action"] == "errors" and list(bad["errors"]) == ["phone"]
    submit(web, "client_edit_modal", {"name": "Maria Gonzalez", "phone": "(212) 555-0134",
                                      "client_email": "maria@example.com"},
           metadata=view["private_metadata"])
    # (the second answer to come: the first was the refusal above)
    assert "Updated *Maria Gonzalez*" in json.dumps(slack.wait_for("respond:cmd", 2)[-1])
    assert clients.find(smith, "maria").email == "maria@example.com"


def test_import_modal_reports_row_by_row(web, slack, smith):
    command(web, slack, "import")
    view = opened_view(slack)
    csv = "name,email,phone\nNew One,new@example.com,\n,x@example.com,\n"
    submit(web, "import_modal", {"csv": csv}, metadata=view["private_metadata"])
    text = json.dumps(slack.wait_for("respond:cmd"))
    assert "1 added, 1 rejected" in text and "A client needs a name" in text


def test_user_text_is_escaped(web, slack, smith):
    clients.add(smith, "<!channel> & <@U123>", email="x@example.com")
    command(web, slack, "status channel")
    text = said(slack)
    assert "&lt;!channel&gt; &amp; &lt;@U123&gt;" in text
    assert "<!channel>" not in text


def test_forged_and_replayed_requests_are_refused(web, slack, smith):
    body = "team_id=T0FIRM&user_id=UANN&command=%2Fledgersync&text=invite+maria+sms"
    assert signed(web, body, secret="not-the-secret").status_code == 401
    assert signed(web, body, timestamp=int(time.time()) - 6 * 60).status_code == 401
    assert web.post("/slack/events", data=body).status_code == 401
    # Bolt hands a listener to its thread pool before answering, so once every listener
    # started so far has returned, a refused request that had started one would show.
    assert slack_listeners_idle(web)
    assert not Message.select().exists()
    assert slack.of("respond:cmd") == []


def test_cross_firm_access_is_refused_on_every_path(web, slack, smith, other):
    maria = Client.get(Client.name == "Maria Gonzalez")
    command(web, slack, "status maria", user="UOLGA", team=OTHER_TEAM)
    assert "No client matches 'maria'" in said(slack)
    command(web, slack, f"invite {maria.phone} sms", user="UOLGA", team=OTHER_TEAM)
    assert "No client matches" in said(slack, 2)
    command(web, slack, 'status maria firm:"Smith & Co"', user="UOLGA", team=OTHER_TEAM)
    assert "No such firm" in said(slack, 3)
    for action in ("resend", "remind", "revoke", "ask_reconnect"):
        button(web, slack, action, maria.id, user="UOLGA", team=OTHER_TEAM)
    button(web, slack, "pick_client", json.dumps({"cmd": "invite", "client": maria.id,
                                                  "channel": "sms"}),
           user="UOLGA", team=OTHER_TEAM)
    submit(web, "invite_modal", {"channel": "sms", "purpose": "connect"},
           metadata=json.dumps({"client": maria.id, "response_url": slack.response_url()}),
           user="UOLGA", team=OTHER_TEAM)
    posts = slack.wait_for("respond:button", 5)
    assert all("does not exist" in json.dumps(p) for p in posts)
    slack.wait_for("respond:cmd", 4)
    assert not Invite.select().where(Invite.client == maria).exists()
    assert not Message.select().where(Message.client == maria).exists()


def test_support_reads_any_firm_and_is_logged(web, slack, smith):
    SupportStaff.create(email="sam@ledgersync.example", slack_team_id="T0SUPPORT",
                        slack_user_id="USAM")
    command(web, slack, 'status maria firm:"Smith & Co"', user="USAM", team="T0SUPPORT")
    text = said(slack)
    assert "Maria Gonzalez" in text and '"resend"' not in text
    command(web, slack, 'invite maria sms firm:"Smith & Co"', user="USAM", team="T0SUPPORT")
    assert "LedgerSync support can't invite" in said(slack, 2)
    command(web, slack, "pending", user="USAM", team="T0SUPPORT")
    assert "Name the firm" in said(slack, 3)
    lookup = Event.get(Event.kind == "support.lookup")
    assert lookup.actor.startswith("support:") and lookup.detail["what"] == "status maria"


def test_firm_notices_are_posted_with_the_next_step(web, slack, smith, clock):
    Firm.update(notify_channel="C0ALERTS").execute()
    maria = Client.get(Client.name == "Maria Gonzalez")
    invite = invites.send(maria, "sms").invite
    clock.shift(timedelta(days=5))
    assert invites.expire(invite.id)
    posted = slack.wait_for("chat.postMessage")[0]
    assert posted["channel"] == "C0ALERTS"
    assert "Maria Gonzalez's invite expired" in posted["text"]
    blocks = posted["blocks"] if isinstance(posted["blocks"], list) else \
        json.loads(posted["blocks"])
    assert blocks[1]["elements"][0]["action_id"] == "resend"
    assert blocks[1]["elements"][0]["value"] == str(maria.id)
    assert Message.get(Message.kind == "notice_expired").status == "delivered"


def test_admins_change_roles_within_their_firm(web, slack, smith, other):
    access.connect(TEAM, "UBOB", "bob@smith.example", "correct horse 2")
    command(web, slack, "role ann@smith.example staff", user="UBOB")
    assert "the staff role can't change roles" in said(slack)
    command(web, slack, "role olga@other.example staff")
    assert "No one at Smith &amp; Co signs in as olga@other.example" in said(slack, 2)
    command(web, slack, "role ann@smith.example staff")
    assert "the only admin" in said(slack, 3)
    command(web, slack, "role bob@smith.example admin")
    assert "bob@smith.example is now *admin*" in said(slack, 4)
    assert access.resolve(TEAM, "UBOB").role == "admin"

"""Where firm notices go: the chosen channel; until one is chosen, each admin
connected to Slack by direct message (one message per admin, each sent once);
with nobody to tell, canceled with the reason. And `notify`, which accepts a
channel as people give it and chooses it only once a test post went in."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from rq import Queue

import wiring
from bot import parse
from bot.notices import NO_THREAD_IN_DM
from bot.parse import ChannelRef
from core import ports
from core.firms import access, firms
from core.invitations import invites, links, sweep
from core.messaging import deliveries, notices, outbound
from core.platform import config, tokens
from core.records import Client, ClientThread, Firm, Message, Staff
from core.reports import doctor
from jobs.worker import LedgerSyncWorker
from tests.slack_requests import command, said
from tests.slack_standin import TEAM

TTL = timedelta(days=5)


@pytest.fixture
def slack_on(database, slack):
    """Slack configured (pointed at the stand-in), deliveries done inline."""
    config.use(config.settings().with_(slack_bot_token="xoxb-test",
                                       slack_api_url=slack.api_url))
    outbound.reset_senders()
    yield slack
    outbound.reset_senders()


@pytest.fixture
def admins(firm, maria):
    """Ann and Dan, admins connected to Slack; Bob (staff) connected; Eve (admin) not."""
    firms.add_staff(firm, "dan@smith.example", "correct horse dan", role="admin")
    firms.add_staff(firm, "bob@smith.example", "correct horse bob", role="staff")
    firms.add_staff(firm, "eve@smith.example", "correct horse eve", role="admin")
    for user, email, password in (("UANN", "ann@smith.example", "correct horse battery"),
                                  ("UDAN", "dan@smith.example", "correct horse dan"),
                                  ("UBOB", "bob@smith.example", "correct horse bob")):
        assert access.connect(TEAM, user, email, password).ok
    return firm


def expire_invite(clock, maria):
    invite = invites.send(maria, "sms").invite
    clock.shift(TTL)
    assert invites.expire(invite.id)
    return invite


def blocks_of(posted: dict) -> list[dict]:
    blocks = posted["blocks"]
    return blocks if isinstance(blocks, list) else json.loads(blocks)


def notices_of(kind: str) -> list[Message]:
    return list(Message.select().where(Message.kind == f"notice_{kind}").order_by(Message.id))


# --- routing ------------------------------------------------------------------------


def test_without_a_channel_each_connected_admin_gets_one_dm(slack_on, admins, maria, clock):
    slack = slack_on
    invite = expire_invite(clock, maria)
    assert [len(slack.dms(u)) for u in ("UANN", "UDAN", "UBOB")] == [1, 1, 0]
    assert "Maria Gonzalez's invite expired" in slack.dms("UDAN")[0]["text"]
    assert blocks_of(slack.dms("UDAN")[0])[1]["elements"][0]["action_id"] == "resend"
    sent = notices_of("expired")
    assert [(m.to_addr, m.dedupe_key, m.status) for m in sent] == [
        ("UANN", f"notice-expired-{invite.id}", "delivered"),
        ("UDAN", f"notice-expired-{invite.id}/dm/UDAN", "delivered")]
    # Delivery again (a retried job, the sweep), and the notice again: nothing more.
    for message in sent:
        deliveries.deliver(message.id)
    clock.shift(timedelta(hours=1))
    sweep.run()
    assert notices.invite_expired(invite) is None
    assert len(slack.of("chat.postMessage")) == 2 and len(notices_of("expired")) == 2


def test_a_client_accepting_is_told_to_each_admin_once(slack_on, admins, maria):
    slack = slack_on
    links.accept(tokens.unseal(invites.send(maria, "sms").invite.token_sealed))
    assert [len(slack.dms(u)) for u in ("UANN", "UDAN")] == [1, 1]
    assert "Maria Gonzalez accepted the invite." in slack.dms("UANN")[0]["text"]


def test_the_dms_are_written_with_the_notice_and_sent_after_it(slack_on, admins, maria):
    """write() writes every DM in the caller's transaction and dispatches nothing;
    the caller dispatches the first after commit; sending it dispatches the others.
    Each is claimed once, so running every delivery twice sends nothing twice."""
    slack, dispatched = slack_on, []
    ports.install(ports.current().with_(dispatcher=dispatched.extend))
    first = notices.write(admins, "opted_out", "Maria opted out.", client=maria,
                          dedupe_key="notice-test-1")
    assert dispatched == [] and len(notices_of("opted_out")) == 2
    outbound.dispatch(first)
    assert dispatched == [first.id]
    deliveries.deliver(first.id)
    assert dispatched == [m.id for m in notices_of("opted_out")]
    for message_id in dispatched * 2:
        deliveries.deliver(message_id)
    assert [len(slack.dms(u)) for u in ("UANN", "UDAN")] == [1, 1]
    assert notices.write(admins, "opted_out", "Again.", dedupe_key="notice-test-1") is None


def test_with_workers_the_first_dm_job_enqueues_the_others(slack_on, admins, maria, clock,
                                                           redis_conn):
    from jobs import tasks

    assert wiring.use_queue(config.settings())
    try:
        invite = expire_invite(clock, maria)
        lead, other = notices_of("expired")
        assert lead.dedupe_key == f"notice-expired-{invite.id}"
        queued = [job.args[0] for job in Queue("high", connection=redis_conn).jobs]
        assert lead.id in queued and other.id not in queued  # the invite's text is there too
        LedgerSyncWorker([Queue("high", connection=redis_conn)], connection=redis_conn).work(
            burst=True)
        assert [len(slack_on.dms(u)) for u in ("UANN", "UDAN")] == [1, 1]
        # Redis loses the job of a DM the first one enqueued: the sweep sends it, once.
        first = notices.write(admins, "opted_out", "Maria opted out.", dedupe_key="notice-t-3")
        assert tasks.deliver(first.id) == "delivered"
        redis_conn.flushdb()  # (this test database only)
        clock.shift(timedelta(minutes=11))
        wiring.inline()
        assert sweep.run().redispatched == 1
        assert [len(slack_on.dms(u)) for u in ("UANN", "UDAN")] == [2, 2]
    finally:
        wiring.inline()


def test_one_admin_refused_or_slow_does_not_hold_the_others(slack_on, admins, maria):
    slack = slack_on
    slack.refuse.update({"UANN": "internal_error", "UDAN": "user_not_found"})
    firms.add_staff(admins, "fay@smith.example", "correct horse fay", role="admin")
    assert access.connect(TEAM, "UFAY", "fay@smith.example", "correct horse fay").ok
    first = notices.write(admins, "expired", "It expired.", dedupe_key="notice-test-2")
    outbound.dispatch(first)  # Ann's fails for now (retried later): Dan's and Fay's still go
    by_user = {m.to_addr: m for m in notices_of("expired")}
    assert by_user["UANN"].status == "pending"
    assert (by_user["UDAN"].status, by_user["UDAN"].error_message) == (
        "failed", "Slack refused: user not found")
    assert by_user["UFAY"].status == "delivered" and len(slack.dms("UFAY")) == 1
    del slack.refuse["UANN"]
    deliveries.deliver(first.id)
    assert first.refreshed().status == "delivered" and len(slack.dms("UFAY")) == 1


def test_after_notify_notices_go_to_the_channel_only(slack_on, admins, maria, clock):
    Firm.update(notify_channel="C0ALERTS").execute()
    expire_invite(clock, maria)
    [posted] = slack_on.of("chat.postMessage")
    assert posted["channel"] == "C0ALERTS"
    assert [m.to_addr for m in notices_of("expired")] == ["C0ALERTS"]


def test_with_no_admin_connected_the_notice_is_canceled_with_the_reason(slack_on, firm, maria,
                                                                         clock):
    expire_invite(clock, maria)
    [notice] = notices_of("expired")
    assert (notice.to_addr, notice.status) == (notices.NO_CHANNEL, "canceled")
    assert "choose one with /ledgersync notify #channel" in notice.error_message
    assert slack_on.of("chat.postMessage") == []


def test_a_connection_lapsed_by_a_password_change_gets_no_dm(slack_on, admins):
    assert notices.linked_admins(admins) == ["UANN", "UDAN"]
    firms.set_password(Staff.get(Staff.email == "dan@smith.example"), "a new horse staple")
    assert notices.linked_admins(admins) == ["UANN"]


def test_without_slack_notices_stay_in_the_outbox(admins, maria, clock):
    expire_invite(clock, maria)
    [notice] = notices_of("expired")
    assert (notice.to_addr, notice.provider, notice.status) == (
        notices.NO_CHANNEL, "outbox", "delivered")


def test_a_client_text_by_dm_says_how_to_answer_in_a_thread(slack_on, admins, maria):
    outbound.dispatch(notices.write(admins, "client_text", "Is this legit?", client=maria,
                                    dedupe_key="notice-text-1"))
    [dm] = slack_on.dms("UANN")
    assert "Is this legit?" in dm["text"] and NO_THREAD_IN_DM in json.dumps(blocks_of(dm))
    assert len(slack_on.dms("UDAN")) == 1 and not ClientThread.select().exists()


# --- doctor -------------------------------------------------------------------------


def channel_check(firm) -> doctor.Check:
    return next(c for c in doctor.run(Firm.get_by_id(firm.id)) if "hannel" in c.text)


def test_doctor_says_where_notices_go(slack_on, firm):
    lost = channel_check(firm)
    assert not lost.ok and "no admin connected to Slack: firm notices are being lost" in lost.text
    assert access.connect(TEAM, "UANN", "ann@smith.example", "correct horse battery").ok
    dm = channel_check(firm)
    assert (dm.ok, dm.text, dm.fix) == (
        False, "No channel chosen: notices go to admins by direct message",
        "Choose one: /ledgersync notify #channel")
    Firm.update(notify_channel="C0ALERTS").execute()
    chosen = channel_check(firm)
    assert chosen.ok and chosen.channel == "C0ALERTS"


# --- notify -------------------------------------------------------------------------


@pytest.mark.parametrize("text,expected", [
    ("<#C0123ABC|tax-clients>", ChannelRef("C0123ABC", "tax-clients")),
    ("<#C0123ABC>", ChannelRef("C0123ABC")),
    ("<#C0123ABC|>", ChannelRef("C0123ABC")),
    ("  <#G0123ABC|secret-stuff>  ", ChannelRef("G0123ABC", "secret-stuff")),
    ("https://smithco.slack.com/archives/C0123ABC", ChannelRef("C0123ABC")),
    ("https://smithco.slack.com/archives/C0123ABC/p1700000000000100", ChannelRef("C0123ABC")),
    ("<https://smithco.slack.com/archives/C0123ABC>", ChannelRef("C0123ABC")),
    ("https://app.slack.com/client/T0FIRM/C0123ABC", ChannelRef("C0123ABC")),
    ("C0123ABC", ChannelRef("C0123ABC")),
    ("G0123ABC", ChannelRef("G0123ABC")),
    ("#tax-clients", ChannelRef(name="tax-clients")),
    ("tax_clients", ChannelRef(name="tax_clients")),
    ("#Tax-Clients", ChannelRef(name="tax-clients")),
    ("", None),
    ("tax clients", None),
    ("<@U0123ABC>", None),
    ("<!channel>", None),
    ("https://example.com/archives/C0123ABC", None),
])
def test_notify_reads_a_channel_as_people_give_it(text, expected):
    assert parse.slack_channel(text) == expected


@pytest.mark.parametrize("text", [
    "<#C0TAXES1|tax-clients>", "https://smithco.slack.com/archives/C0TAXES1/p1700000000000100",
    "C0TAXES1", "#tax-clients", "tax-clients"])
def test_notify_posts_in_the_channel_then_chooses_it(web, slack, smith, text):
    slack.page_size = 2  # names are found past the first page
    slack.channels = [{"id": "C0GENERAL", "name": "general"}, {"id": "C0RANDOM", "name": "random"},
                      {"id": "C0TAXES1", "name": "tax-clients"}]
    command(web, slack, f"notify {text}")
    assert "Firm notices now go to <#C0TAXES1>" in said(slack)
    [posted] = slack.of("chat.postMessage")
    assert posted["channel"] == "C0TAXES1"
    assert posted["text"] == "Firm notices for Smith &amp; Co will be posted here."
    assert Firm.get_by_id(smith.id).notify_channel == "C0TAXES1"


@pytest.mark.parametrize("code,answer", [
    ("not_in_channel",
     "Invite @LedgerSync to <#C0TAXES1> first: `/invite @LedgerSync`, then run this again."),
    ("channel_not_found", "I can't see <#C0TAXES1>. If it is private, invite me there first"),
    ("is_archived", "<#C0TAXES1> is archived: choose another channel."),
    ("ratelimited", "Slack refused my test post in <#C0TAXES1> (ratelimited)."),
])
def test_notify_refused_keeps_the_channel_and_says_why(web, slack, smith, code, answer):
    Firm.update(notify_channel="C0BEFORE").execute()
    slack.refuse["C0TAXES1"] = code
    command(web, slack, "notify <#C0TAXES1|tax-clients>")
    text = said(slack)
    assert answer in text and "The notices channel was not changed." in text
    assert Firm.get_by_id(smith.id).notify_channel == "C0BEFORE"


def test_notify_by_a_name_it_cannot_find_says_how_to_pick_it(web, slack, smith):
    command(web, slack, "notify #nowhere")
    assert "I can't find a channel named #nowhere" in said(slack)
    slack.fail["conversations.list"] = "missing_scope"
    command(web, slack, "notify nowhere")
    assert "pick the channel from Slack's list as you type `#`" in said(slack, 2)
    command(web, slack, "notify")
    assert "Name a channel: `/ledgersync notify #tax-clients`" in said(slack, 3)
    assert slack.of("chat.postMessage") == []
    assert Firm.get_by_id(smith.id).notify_channel is None


def test_after_notify_notices_and_doctor_name_the_channel(web, slack, smith, clock):
    command(web, slack, "notify <#C0TAXES1|tax-clients>")
    said(slack)
    maria = Client.get(Client.name == "Maria Gonzalez")
    expire_invite(clock, maria)
    posted = slack.wait_for("chat.postMessage", 2)[1]
    assert posted["channel"] == "C0TAXES1" and "invite expired" in posted["text"]
    assert slack.dms("UANN") == []
    command(web, slack, "doctor")
    assert ":white_check_mark: Notices channel: <#C0TAXES1>" in said(slack, 2)

"""Bulk invites in core: choosing who, confirming once, sending each once,
cancel and retry. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.firms import firms
from core.invitations import bulk_plan, bulk_runs, bulk_sending, clients, invites, links
from core.messaging import optouts
from core.platform import config, tokens
from core.records import BankConnection, BulkItem, Invite, Message
from tests.helpers import statements_run


@pytest.fixture
def crowd(clock, firm):
    made = {
        "texter": clients.add(firm, "Ann Texter", phone="2125550101"),
        "mailer": clients.add(firm, "Bo Mailer", email="bo@example.com"),
        "nothing": clients.add(firm, "Cy Nothing"),
        "stopped": clients.add(firm, "Di Stopped", phone="2125550104"),
        "accepted": clients.add(firm, "Ed Accepted", phone="2125550105"),
        "pending": clients.add(firm, "Flo Pending", phone="2125550106"),
    }
    optouts.opt_out("+12125550104", "keyword")
    links.accept(tokens.unseal(invites.send(made["accepted"], "sms").invite.token_sealed))
    invites.send(made["pending"], "sms")
    return made


def outcomes(run):
    return {i.label: (i.outcome, i.reason) for i in BulkItem.select().where(BulkItem.run == run)}


def test_the_plan_says_who_gets_what_and_who_is_skipped(crowd, firm):
    plan = bulk_plan.prepare(firm, "list", names="Ann Texter\nbo mailer\nCy Nothing\nDi Stopped\n"
                                            "Ed Accepted\nFlo Pending\nNobody Here\nann texter")
    assert (plan.sms, plan.email) == (1, 1)
    skipped = {i.label: i.reason for i in plan.skipped}
    assert skipped == {"Cy Nothing": "no mobile number or email address", "Di Stopped": "opted out",
                       "Ed Accepted": "already accepted",
                       "Flo Pending": "a valid invite is still pending",
                       "Nobody Here": "unknown name"}
    assert plan.eta_seconds == 1.0  # one text at 1 per second; the email goes alongside


def test_not_invited_and_ambiguous_and_other_firms(crowd, firm):
    clients.add(firm, "John Smith", phone="2125550111")
    clients.add(firm, "Jane Smith", phone="2125550112")
    other = firms.create("Other LLP", admin_email="o@o.example", admin_password="x" * 12)
    clients.add(other, "Olga Other", phone="2125550199")
    plan = bulk_plan.prepare(firm, "list", names="smith\nOlga Other")
    assert {i.label: i.reason for i in plan.skipped} == {
        "smith": "ambiguous name (2 clients match)", "Olga Other": "unknown name"}
    never = bulk_plan.prepare(firm, "not_invited")
    labels = {i.label for i in BulkItem.select().where(BulkItem.run == never.run,
                                                       BulkItem.outcome == "queued")}
    assert labels == {"Ann Texter", "Bo Mailer", "John Smith", "Jane Smith"}


def test_confirm_once_then_each_client_gets_exactly_one_invite(crowd, firm):
    plan = bulk_plan.prepare(firm, "not_invited")
    assert bulk_sending.start(plan.run.id) is True
    assert bulk_sending.start(plan.run.id) is False  # a double click
    assert bulk_sending.confirm(plan.run.id) is False
    result = outcomes(plan.run)
    assert result["Ann Texter"] == ("sent", None) and result["Bo Mailer"] == ("sent", None)
    assert result["Cy Nothing"] == ("skipped", "no mobile number or email address")
    assert Message.select().where(Message.kind == "invite",
                                  Message.client == crowd["texter"]).count() == 1
    assert bulk_runs.progress(plan.run.id).run.status == "done"
    again = bulk_plan.prepare(firm, "list", names="Ann Texter")  # the same request again
    assert [i.reason for i in again.skipped] == ["a valid invite is still pending"]


def test_cancel_stops_what_has_not_gone_out(crowd, firm):
    plan = bulk_plan.prepare(firm, "not_invited")
    bulk_sending.confirm(plan.run.id)
    assert bulk_sending.send_next(plan.run.id).result == "sent"
    assert bulk_sending.cancel(plan.run.id) >= 1
    assert bulk_sending.send_next(plan.run.id).result == "stopped"
    counts = bulk_runs.progress(plan.run.id).counts
    assert counts["sent"] == 1 and counts["canceled"] >= 1
    assert Invite.select().count() == 3  # accepted, pending, and the one that went


def test_retry_failed_sends_only_the_failed(crowd, firm, settings):
    plan = bulk_plan.prepare(firm, "not_invited")
    bulk_sending.confirm(plan.run.id)
    BulkItem.update(outcome="failed", reason="carrier said no").where(
        BulkItem.label == "Ann Texter").execute()
    bulk_sending.kick(plan.run.id)
    assert outcomes(plan.run)["Ann Texter"] == ("failed", "carrier said no")
    assert bulk_sending.retry_failed(plan.run.id) == 1
    bulk_sending.kick(plan.run.id)
    assert outcomes(plan.run)["Ann Texter"] == ("sent", None)
    assert Message.select().where(Message.client == crowd["mailer"]).count() == 1


def test_an_undelivered_bulk_text_counts_as_failed_and_is_retried(crowd, firm):
    from core.messaging import deliveries

    plan = bulk_plan.prepare(firm, "not_invited")
    bulk_sending.start(plan.run.id)
    first = Message.get(Message.client == crowd["texter"], Message.kind == "invite")
    Message.update(status="queued").where(Message.id == first.id).execute()  # as Twilio says
    deliveries.record(first.provider_id, "undelivered", error_code="30003",
                      reason="the phone was switched off or out of reach")
    assert outcomes(plan.run)["Ann Texter"] == ("failed",
                                               "the phone was switched off or out of reach")
    assert bulk_sending.retry_failed(plan.run.id) == 1
    bulk_sending.kick(plan.run.id)
    assert outcomes(plan.run)["Ann Texter"] == ("sent", None)
    texts = Message.select().where(Message.client == crowd["texter"], Message.kind == "invite")
    assert texts.count() == 2  # a new link, the first one superseded
    assert first.invite.refreshed().superseded_at is not None


def test_quiet_hours_wait_for_the_morning_and_progress_says_so(clock, firm):
    ny = ZoneInfo("America/New_York")
    clock.move_to(datetime(2026, 11, 23, 22, 0, tzinfo=ny))
    clients.add(firm, "Night Owl", phone="2125550120")
    plan = bulk_plan.prepare(firm, "not_invited")
    bulk_sending.start(plan.run.id)
    assert bulk_runs.progress(plan.run.id).counts["waiting"] == 1
    assert not Message.select().exists()
    step = bulk_sending.send_next(plan.run.id)
    assert step.result == "idle"
    assert step.until == datetime(2026, 11, 24, 8, tzinfo=ny).astimezone(UTC)
    clock.move_to(step.until + timedelta(seconds=1))
    bulk_sending.kick(plan.run.id)
    assert bulk_runs.progress(plan.run.id).counts["sent"] == 1


def test_reconnect_selection(crowd, firm):
    BankConnection.create(client=crowd["accepted"], institution_id="chase",
                          institution_name="Chase", status="needs_reconnect")
    plan = bulk_plan.prepare(firm, "needs_reconnect")
    assert plan.run.purpose == "reconnect" and plan.sms == 1
    bulk_sending.start(plan.run.id)
    assert "asks you to reconnect" in Message.select().order_by(Message.id.desc()).first().body


def test_a_worker_that_died_after_claiming_is_recovered(crowd, firm, settings):
    plan = bulk_plan.prepare(firm, "list", names="Ann Texter")
    bulk_sending.confirm(plan.run.id)
    BulkItem.update(outcome="sending").where(BulkItem.run == plan.run).execute()  # died here
    from core.invitations import sweep

    config.use(settings)
    report = sweep.run(stuck_after=timedelta(0))
    assert report.bulk_runs == 1
    assert outcomes(plan.run)["Ann Texter"] == ("sent", None)


def test_expired_chooses_clients_whose_latest_invite_expired(clock, firm):
    lapsed = clients.add(firm, "Lou Lapsed", phone="2125550130")
    renewed = clients.add(firm, "Ray Renewed", phone="2125550131")
    waiting = clients.add(firm, "Wes Waiting", phone="2125550132")
    revoked = clients.add(firm, "Rob Revoked", phone="2125550133")
    invites.send(lapsed, "sms"), invites.send(renewed, "sms"), invites.send(revoked, "sms")
    invites.revoke(revoked)
    clock.shift(config.settings().invite_ttl + timedelta(minutes=1))
    invites.resend(renewed, "sms")  # its latest invite is valid again
    invites.send(waiting, "sms")
    plan = bulk_plan.prepare(firm, "expired")
    assert {i.label for i in BulkItem.select().where(BulkItem.run == plan.run)} == {"Lou Lapsed"}
    assert (plan.sms, plan.skipped) == (1, [])


def test_preparing_many_clients_takes_a_handful_of_queries(clock, firm):
    """Set-based: the queries don't grow with the number of clients (each insert of
    items is one statement per 500)."""
    for i in range(60):
        clients.add(firm, f"Many {i:02}", phone=f"21255502{i:02}")
    optouts.opt_out("+12125550201", "keyword")
    invites.send(clients.find(firm, "Many 02"), "sms")
    with statements_run() as statements:
        plan = bulk_plan.prepare(firm, "not_invited")
        listed = bulk_plan.prepare(firm, "list", names="\n".join(f"Many {i:02}" for i in range(60)))
    assert (plan.sms, len(plan.skipped)) == (58, 1)  # Many 02 has been invited: not chosen
    assert {i.label: i.reason for i in listed.skipped} == {
        "Many 01": "opted out", "Many 02": "a valid invite is still pending"}
    assert len(statements) <= 20


def test_what_changed_since_the_plan_is_seen_when_each_text_goes(clock, firm):
    """The checks are made again with each claimed item (one query): a STOP, an
    account opened or a link sent since the plan skip the client; a link that lapsed
    without its expiry recorded yet is recorded expired, and the new one goes out."""
    stops = clients.add(firm, "Sam Stops", phone="2125550140")
    joins = clients.add(firm, "Jo Joins", phone="2125550141")
    lapsed = clients.add(firm, "Lu Lapsed", phone="2125550142")
    clients.add(firm, "Al Asked", phone="2125550143")
    first = invites.send(lapsed, "sms").invite
    clock.shift(config.settings().invite_ttl + timedelta(minutes=1))  # lapsed, unrecorded
    plan = bulk_plan.prepare(firm, "list", names="Sam Stops\nJo Joins\nLu Lapsed\nAl Asked")
    optouts.opt_out("+12125550140", "keyword")
    links.accept(tokens.unseal(invites.send(joins, "sms").invite.token_sealed))
    invites.send(clients.Client.get(clients.Client.name == "Al Asked"), "sms")
    assert bulk_sending.start(plan.run.id) is True
    result = outcomes(plan.run)
    assert result["Sam Stops"] == ("skipped", "opted out")
    assert result["Jo Joins"] == ("skipped", "already accepted")
    assert result["Al Asked"] == ("skipped", "a valid invite is still pending")
    assert result["Lu Lapsed"] == ("sent", None)
    assert Invite.get_by_id(first.id).expired_at is not None
    assert Message.select().where(Message.client == stops).count() == 0


def test_an_address_someone_said_isnt_the_clients_gets_no_bulk_text(clock, firm):
    """Whoever opened Gil's link said "This isn't me": a bulk run (planned before or
    after) skips his number until staff check it; his email, and Hal, still go."""
    gil = clients.add(firm, "Gil Checked", phone="2125550150", email="gil@example.com")
    clients.add(firm, "Hal Fine", phone="2125550151")
    early = bulk_plan.prepare(firm, "list", names="Gil Checked\nHal Fine")
    sent = invites.send(gil, "sms").invite
    assert links.disown(tokens.unseal(sent.token_sealed))
    later = bulk_plan.prepare(firm, "list", names="Gil Checked\nHal Fine")
    assert {i.label: i.reason for i in later.skipped} == {"Gil Checked": bulk_plan.UNCHECKED}
    assert bulk_sending.start(early.run.id) is True
    assert outcomes(early.run)["Gil Checked"] == ("skipped", bulk_plan.UNCHECKED)
    assert outcomes(early.run)["Hal Fine"] == ("sent", None)
    by_email = bulk_plan.prepare(firm, "list", names="Gil Checked", channel="email")
    assert (by_email.email, by_email.skipped) == (1, [])
    texts_to_gil = Message.select().where(Message.client == gil, Message.channel == "sms")
    assert texts_to_gil.count() == 1  # the first link only

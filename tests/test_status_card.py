"""The status card at a glance (Slack) and `ledgersync status` (the CLI's words): times
as Slack date tokens, a state line that says what to do next, a timeline in plain
words with the firm's notices on one line, and the next step as the primary button.
On SQLite and PostgreSQL; one card end to end through the Slack stand-in."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

import core
from bot import views
from cli import render
from core.banking import connections
from core.invitations import clients, invites, links
from core.messaging import optouts
from core.platform import tokens
from core.records import Client, Invite, Message, events
from core.reports import status
from tests.conftest import T0
from tests.slack_requests import command, said

TOKEN = re.compile(r"<!date\^(\d+)\^\{date_short_pretty\} \{time\}\|([^|>]+)>")
CONFIRM = "Revoke Maria Gonzalez's link? It stops working at once and they are signed out."


def card_of(client: Client) -> tuple[dict, str, str]:
    """The card, its JSON (as Slack gets it) and the CLI's status, for one client."""
    info = status.for_client(client)
    card = views.status_card(info)
    return card, json.dumps(card, ensure_ascii=False), render.status(info)


def state_line(card: dict) -> str:
    return card["blocks"][0]["text"]["text"].split("\n", 1)[1]


def buttons(card: dict) -> list[dict]:
    return [e for block in card["blocks"] if block["type"] == "actions"
            for e in block["elements"]]


def accept(client: Client) -> None:
    links.accept(tokens.unseal(invites.latest(client).token_sealed))


def connect(client: Client, *bank_ids: str) -> None:
    for bank in bank_ids:
        assert connections.add(client, bank, "user_good", "pass_good").status == "connected"


def broken(client: Client, bank_id: str = "chase"):
    connection = next(c for c in connections.for_client(client) if c.institution_id == bank_id)
    connections.mark_broken(connection, "the bank asked to sign in again")
    return connection


# --- times --------------------------------------------------------------------------


def test_times_are_slack_date_tokens_with_the_clients_time_as_fallback(clock, maria):
    invites.send(maria, "sms")
    card, text, cli = card_of(maria)
    stamps = TOKEN.findall(text)
    sent, expiry = int(T0.timestamp()), int((T0 + timedelta(days=5)).timestamp())
    assert (str(sent), "Mon 23 Nov, 10:00 AM EST") in stamps  # the timeline
    assert (str(expiry), "Sat 28 Nov, 10:00 AM EST") in stamps  # the state line
    assert "link works until <!date^" in state_line(card) and "(5 days left)" in text
    assert text.count("<!date^") == len(stamps)  # every token whole
    assert "`<!date" not in text  # a token in a code span would show raw
    assert "AM" not in TOKEN.sub("", text)  # no time outside a token
    # The terminal keeps plain text, labelled with the zone, so lines compare.
    assert "Mon 23 Nov, 10:00 AM EST" in cli
    assert "link works until Sat 28 Nov, 10:00 AM EST (5 days left)" in cli


def test_the_fallback_is_in_the_clients_own_zone(clock, firm):
    west = clients.add(firm, "West Co", email="west@example.com", timezone="America/Los_Angeles")
    invites.send(west, "email")
    _, text, cli = card_of(west)
    assert (str(int(T0.timestamp())), "Mon 23 Nov, 7:00 AM PST") in TOKEN.findall(text)
    assert "Mon 23 Nov, 7:00 AM PST" in cli


# --- the state line and the primary button ------------------------------------------


def _pending(maria, clock):
    invites.send(maria, "sms")


def _expired(maria, clock):
    invite = invites.send(maria, "sms").invite
    clock.shift(timedelta(days=6))
    invites.expire(invite.id)


def _revoked(maria, clock):
    invites.send(maria, "sms")
    invites.revoke(maria)


def _superseded(maria, clock):
    invite = invites.send(maria, "sms").invite
    Invite.update(superseded_at=T0).where(Invite.id == invite.id).execute()


def _accepted(maria, clock):
    invites.send(maria, "sms")
    accept(maria)


def _connected(maria, clock):
    _accepted(maria, clock)
    connect(maria, "chase", "ally-bank")


def _needs_restoring(maria, clock):
    _connected(maria, clock)
    broken(maria, "ally-bank")


def _restoring_asked(maria, clock):
    _needs_restoring(maria, clock)
    invites.send(maria, "sms", purpose="reconnect")


def _restored(maria, clock):
    _restoring_asked(maria, clock)
    ally = next(c for c in connections.for_client(maria) if c.status == "needs_reconnect")
    connections.restore(maria, ally.id, "user_good", "pass_good")  # the reconnect link's work


def _opted_out(maria, clock):
    invites.send(maria, "sms")
    optouts.opt_out(maria.phone, "replied STOP", firm=maria.firm, client=maria)


STATES = [
    # setup, the card's state line, the CLI's next step, primary button (action, label)
    (None, ["Not invited yet — *Send invite*"], "Next: ledgersync invite 'Maria Gonzalez'",
     ("resend", "Send invite")),
    (_pending, ["Invited, not accepted yet — link works until <!date^",
                "(5 days left). *Remind* if they haven't seen it."],
     "Remind if they haven't seen it: ledgersync remind 'Maria Gonzalez'", ("remind", "Remind")),
    (_expired, ["Link expired <!date^", "— *Resend*"],
     "Link expired Sat 28 Nov, 10:00 AM EST. Next: ledgersync resend", ("resend", "Resend")),
    (_revoked, ["Link revoked <!date^", "*Resend* if they should still connect"],
     "If they should still connect: ledgersync resend", ("resend", "Resend")),
    (_superseded, ["Link replaced <!date^", "*Resend*"], "ledgersync resend",
     ("resend", "Resend")),
    (_accepted, ["Accepted <!date^", "— no bank connected yet"],
     "no bank connected yet. If they need to sign in again: ledgersync resend",
     ("resend", "Send a new link")),
    (_connected, [":white_check_mark: Connected: Ally Bank, Chase"], "Connected: Ally Bank, Chase",
     None),
    (_needs_restoring, ["Needs restoring: Ally Bank — *Ask to reconnect*"],
     "Ask them to reconnect: ledgersync invite 'Maria Gonzalez' --reconnect",
     ("ask_reconnect", "Ask to reconnect")),
    (_restoring_asked, ["Needs restoring: Ally Bank — asked to reconnect, link works until"],
     "Remind if they haven't seen it: ledgersync remind", ("remind", "Remind")),
    (_restored, [":white_check_mark: Connected: Ally Bank, Chase"], "Connected: Ally Bank, Chase",
     None),
    (_opted_out, ["Opted out of texts — nothing is sent until they text START"],
     "Call them to ask.", None),
]


@pytest.mark.parametrize("setup,words,cli_step,primary", STATES,
                         ids=[s[0].__name__.strip("_") if s[0] else "not_invited"
                              for s in STATES])
def test_each_state_says_the_next_step_and_makes_it_the_primary_button(
        clock, maria, setup, words, cli_step, primary):
    if setup:
        setup(maria, clock)
    card, text, cli = card_of(maria)
    line = state_line(card)
    assert all(w in line for w in words), line
    assert cli_step in cli.splitlines()[1], cli
    firsts = [(b["action_id"], b["text"]["text"]) for b in buttons(card)
              if b.get("style") == "primary"]
    assert firsts == ([primary] if primary else [])
    if primary:
        assert buttons(card)[0]["style"] == "primary"  # the next step comes first
    assert all(b["value"] == str(maria.id) for b in buttons(card))


def test_after_this_isnt_me_the_headline_says_the_number_must_be_checked_first(clock, maria):
    sent = invites.send(maria, "sms")
    links.disown(tokens.unseal(sent.invite.token_sealed))
    card, _, cli = card_of(maria)
    line = state_line(card)
    assert line.startswith(":warning: Someone who opened the link sent to (212) 555-0134 said "
                           "it isn't them (<!date^")
    assert "(212) 555-0134 must be checked with the client before anything is sent" in line
    assert "*Resend* asks first" in line
    assert cli.splitlines()[1] == (
        "Someone who opened the link sent to (212) 555-0134 said it isn't them (Mon 23 Nov, "
        "10:00 AM EST): (212) 555-0134 must be checked with the client before anything is "
        "sent. Correct it if it's wrong; if it's right: ledgersync resend 'Maria Gonzalez' "
        "--force")
    assert [b for b in buttons(card) if b.get("style") == "primary"] == []  # no next step
    clients.update(maria, phone="(212) 555-0199")  # corrected: an ordinary withdrawn link
    card, _, cli = card_of(maria)
    assert "Link revoked" in state_line(card) and "Link revoked" in cli


def test_accepted_without_a_bank_is_not_shown_as_connected(clock, maria):
    _accepted(maria, clock)
    card, text, cli = card_of(maria)
    assert "no bank connected yet" in state_line(card)
    assert "Connected" not in state_line(card) and ":white_check_mark:" not in state_line(card)
    assert "Bank connections:* none yet" in text
    assert "Connected" not in cli.splitlines()[1] and "no bank connected yet" in cli
    connect(maria, "chase")
    card, _, cli = card_of(maria)
    assert state_line(card) == ":white_check_mark: Connected: Chase"
    assert cli.splitlines()[1] == "Connected: Chase"


def test_revoke_asks_first_naming_the_client(clock, maria):
    invites.send(maria, "sms")
    card, _, _ = card_of(maria)
    revoke = next(b for b in buttons(card) if b["action_id"] == "revoke")
    assert revoke["value"] == str(maria.id) and revoke["style"] == "danger"
    confirm = revoke["confirm"]
    assert confirm["text"]["text"] == CONFIRM
    assert (confirm["confirm"]["text"], confirm["deny"]["text"], confirm["style"]) == \
        ("Revoke", "Keep", "danger")
    assert confirm["title"]["text"] and len(confirm["title"]["text"]) <= 100


# --- the timeline -------------------------------------------------------------------


def test_firm_notices_are_one_line(clock, maria):
    invites.send(maria, "sms")
    accept(maria)  # told: accepted
    connect(maria, "chase")  # bank connected
    chase = broken(maria)  # needs restoring
    clock.shift(timedelta(minutes=5))
    connections.restore(maria, chase.id, "user_good", "pass_good")  # bank restored
    # The same notice by direct message to a second admin is not a second notice.
    Message.create(firm=maria.firm, client=maria, channel="slack", kind="notice_bank_restored",
                   to_addr="U0SECOND", body="Maria Gonzalez restored Chase.", status="delivered",
                   dedupe_key="notice-restored-1/dm/U0SECOND")
    info = status.for_client(maria)
    told = [line.text for line in info.timeline if "Firm" in line.text]
    assert told == ["Firm told 4 times (latest: bank restored)"]
    card, text, cli = card_of(maria)
    assert text.count("Firm told") == 1 and cli.count("Firm told") == 1
    assert "Firm notified" not in text and "(no channel chosen)" not in text
    assert info.timeline[-1].text == told[0]  # the latest notice was the last thing


def test_a_notice_nobody_got_says_so(clock, maria):
    invites.send(maria, "sms")
    accept(maria)
    Message.update(status="canceled", error_message="no channel chosen").where(
        Message.channel == "slack").execute()
    told = [line.text for line in status.for_client(maria).timeline if "Firm" in line.text]
    assert told == ["Firm told: accepted; 1 not delivered: no channel chosen"]


def test_the_story_reads_in_plain_words(clock, maria):
    invites.send(maria, "sms")
    clock.shift(timedelta(minutes=1))
    links.opened(tokens.unseal(invites.latest(maria).token_sealed))
    clock.shift(timedelta(hours=1))
    invites.remind(maria)
    accept(maria)
    connect(maria, "chase")
    texts = [line.text for line in status.for_client(maria).timeline]
    assert texts[:5] == ["Added as a client", "Invited by SMS",
                         "Invite SMS to (212) 555-0134: delivered", "Opened the link",
                         "Reminded by the firm"]
    assert "Accepted; client account ready" in texts and "Connected Chase" in texts


def recorded_kinds() -> set[str]:
    """Every event kind core records: the literal kinds of each `events.record(` call
    (a kind held in a variable: the literals assigned to it; `f"connection.{what}"`:
    what `_acted` is called with)."""
    kinds = set()
    for path in Path(core.__file__).parent.rglob("*.py"):
        source = path.read_text()
        for call in re.finditer(r"events\.record\(\s*([^,]*),", source):
            first = call.group(1).strip()
            if re.fullmatch(r"[a-z_]+", first):
                assigned = re.findall(rf"\b{first} = ([^\n]*)", source)
                first = " ".join(assigned)
            elif first.startswith("f\""):
                whats = re.findall(r"_acted\([^)]*\"([a-z_]+)\"\)", source)
                first = " ".join(f'"connection.{what}"' for what in whats)
            kinds |= set(re.findall(r'"([a-z_]+\.[a-z_]+)"', first))
    return kinds


def test_every_kind_core_records_has_words():
    kinds = recorded_kinds()
    assert {"connection.connected", "connection.restored", "optout.stopped",
            "bulk.started", "staff.added", "slack.connected", "support.lookup",
            "client.signed_out", "firm.created"} <= kinds  # the scan finds them
    assert sorted(kinds - set(status.EVENT_WORDS)) == []


def test_no_event_code_is_ever_shown(clock, maria):
    """A client with an event of every kind (and one no code knows): neither the card
    nor the CLI shows a dotted code; the firm's own log stays out of the timeline."""
    kinds = sorted(recorded_kinds() | {k.split(":")[0] for k in status.EVENT_WORDS})
    for n, kind in enumerate([*kinds, "connection.paused_by_bank"]):
        someone = clients.add(maria.firm, f"Client {n}", email=f"client{n}@example.com")
        events.record(kind, client=someone, bank="Chase", reason="the bank asked",
                      channel="sms", email="x@example.com", role="staff", run=1)
        info = status.for_client(someone)
        _, text, cli = card_of(someone)
        assert kind not in text and kind not in cli, kind
        firm_only = kind.startswith(status.FIRM_KINDS)
        assert len(info.timeline) == (1 if firm_only else 2), kind  # added, and this one
    assert "Connection paused by bank" in text and "Connection paused by bank" in cli


def test_events_with_details_missing_still_read_as_words(maria):
    for kind in status.EVENT_WORDS:
        event = events.record(kind.split(":")[0], client=maria)
        words = status.event_text(event)
        assert words and "{" not in words and kind.split(":")[0] not in words, kind


# --- Block Kit limits and escaping ---------------------------------------------------


def test_a_long_story_stays_within_block_kit_limits(clock, firm):
    name = "<!channel> & " + "Ü" * 180
    client = clients.add(firm, name, phone="(212) 555-0134", email="long@example.com")
    invites.send(client, "sms")
    connect(client, "chase", "ally-bank")
    for n in range(40):
        events.record("client.texted", client=client, chars=n)
        events.record("connection.broken", client=client, bank="<b>&" * 60, reason="x" * 300)
    card, text, _ = card_of(client)
    assert len(card["blocks"]) <= 50
    for block in card["blocks"]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
    assert text.count("<!date^") == len(TOKEN.findall(text))
    assert "<!channel>" not in text and "<b>" not in text
    revoke = next(b for b in buttons(card) if b["action_id"] == "revoke")
    assert len(revoke["confirm"]["text"]["text"]) <= 300


# --- end to end ---------------------------------------------------------------------


def test_the_card_in_slack(web, slack, smith):
    maria = Client.get(Client.name == "Maria Gonzalez")
    invites.send(maria, "sms")
    command(web, slack, "status maria")
    posted = json.loads(said(slack))[0]
    text = json.dumps(posted, ensure_ascii=False)
    assert "Invited, not accepted yet — link works until <!date^" in text
    assert TOKEN.search(text) and "Invite SMS to (212) 555-0134: delivered" in text
    blocks = posted["blocks"] if isinstance(posted["blocks"], list) else \
        json.loads(posted["blocks"])
    elements = next(b for b in blocks if b["type"] == "actions")["elements"]
    assert [(e["action_id"], e.get("style")) for e in elements] == [
        ("remind", "primary"), ("resend", None), ("revoke", "danger")]
    assert elements[2]["confirm"]["text"]["text"] == CONFIRM


def test_reminder_lines_say_which_link_they_are_about(clock, maria):
    """A link by SMS on Monday, a new one by email on Tuesday: the first one's reminder
    was not sent (superseded), the second one's was — each line names its link, so the
    two don't read as a contradiction."""
    from core.invitations import reminders

    first = invites.send(maria, "sms").invite
    clock.shift(timedelta(days=1))
    second = invites.resend(maria, "email").invite
    clock.shift(config_reminder_after() - timedelta(days=1))  # the first link's day 3
    assert reminders.send_automatic(first.id).result == "skipped"
    clock.shift(timedelta(days=1))  # the second's
    assert reminders.send_automatic(second.id).result == "sent"
    texts = [line.text for line in status.for_client(maria).timeline]
    assert "Automatic reminder not sent: invite superseded (the SMS link of Mon 23 Nov)" in texts
    assert "Automatic reminder sent (the email link of Tue 24 Nov)" in texts


def config_reminder_after():
    from core.platform import config

    return config.settings().reminder_after

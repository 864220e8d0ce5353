"""App Home: the firm at a glance for staff (open invites soonest expiry first, clients
whose connection needs restoring, recent accepts and connections, what could not be
delivered and why, the notices channel), a short guide for support, ❌ and Connect for
someone not linked. The data (`core.reports.overview`) on SQLite and PostgreSQL; the Home
end to end: a signed `app_home_opened` into the real app, `views.publish` at the
Slack stand-in."""

from __future__ import annotations

import json
import re
from datetime import UTC, timedelta

from bot import home_views
from core.banking import connections
from core.firms import firms, support
from core.firms.access import Actor
from core.invitations import clients, invites, links
from core.platform import tokens
from core.records import Client, Firm, Invite, Staff
from core.reports import doctor, overview
from tests.conftest import T0
from tests.helpers import slack_listeners_idle
from tests.slack_requests import event, interaction
from tests.slack_standin import TEAM

SUPPORT_TEAM = "TSUPPORT"
LANDLINE = "+15005550009"  # the Twilio stand-in refuses it: 21614, not a mobile number


def accept(client: Client) -> None:
    links.accept(tokens.unseal(invites.latest(client).token_sealed))


def connected(client: Client, *bank_ids: str) -> None:
    invites.send(client, "sms")
    accept(client)
    for bank in bank_ids:
        assert connections.add(client, bank, "user_good", "pass_good").status == "connected"


def broken(client: Client, bank_id: str) -> None:
    connection = next(c for c in connections.for_client(client) if c.institution_id == bank_id)
    connections.mark_broken(connection, "the bank asked to sign in again")


def invited(firm, count: int, prefix: str = "Client") -> list[Client]:
    people = [clients.add(firm, f"{prefix} {n:03}", phone=f"21255{n:05}") for n in range(count)]
    for client in people:
        invites.send(client, "sms")
    return people


# --- the data (SQLite and PostgreSQL) -----------------------------------------------------


def test_open_invites_soonest_expiry_first_with_days_left(clock, firm, maria):
    late, early = clients.add(firm, "Late Co", phone="2125550150"), maria
    invites.send(early, "sms")
    clock.shift(timedelta(days=2))
    invites.send(late, "sms")
    gone = clients.add(firm, "Revoked Co", phone="2125550151")
    invites.send(gone, "sms")
    invites.revoke(gone)

    seen = overview.of(firm)
    assert [(r.client.name, r.left) for r in seen.invites.rows] == [
        ("Maria Gonzalez", "3 days left"), ("Late Co", "5 days left")]
    assert seen.invites.total == 2 and seen.invites.more == 0
    assert seen.invites.rows[0].expires_at == T0 + timedelta(days=5)


def test_each_part_shows_its_first_rows_and_counts_them_all(clock, firm):
    invited(firm, 4)
    seen = overview.of(firm, shown=3)
    assert [r.client.name for r in seen.invites.rows] == ["Client 000", "Client 001",
                                                         "Client 002"]
    assert (seen.invites.total, seen.invites.more) == (4, 1)


def test_clients_whose_connection_needs_restoring(clock, firm, maria):
    connected(maria, "chase", "wells-fargo")
    broken(maria, "wells-fargo")
    ben = clients.add(firm, "Ben Broken", phone="2125550160")
    connected(ben, "chase")
    clock.shift(timedelta(hours=1))
    broken(ben, "chase")
    invites.resend(ben, "sms", purpose="reconnect")
    fine = clients.add(firm, "Fine Co", phone="2125550161")
    connected(fine, "chase")

    part = overview.of(firm).restoring
    assert part.total == 2
    assert [(r.client.name, r.banks) for r in part.rows] == [
        ("Ben Broken", ("Chase",)), ("Maria Gonzalez", ("Wells Fargo",))]
    assert part.rows[0].since == T0 + timedelta(hours=1)
    assert part.rows[0].asked_until == T0 + timedelta(hours=1, days=5)
    assert part.rows[1].asked_until is None


def test_recent_accepts_and_connections_newest_first_for_14_days(clock, firm, maria):
    old = clients.add(firm, "Old Co", phone="2125550170")
    connected(old, "chase")
    clock.shift(timedelta(days=15))
    connected(maria, "chase")
    clock.shift(timedelta(hours=1))
    broken(maria, "chase")
    chase = connections.for_client(maria)[0]
    assert connections.restore(maria, chase.id, "user_good", "pass_good").status == "connected"

    part = overview.of(firm).recent
    assert [(r.client.name, r.text) for r in part.rows] == [
        ("Maria Gonzalez", "Restored Chase"), ("Maria Gonzalez", "Connected Chase"),
        ("Maria Gonzalez", "Accepted; client account ready")]
    assert part.total == 3  # Old Co's, 15 days ago, is not recent


def test_failed_deliveries_say_why_in_plain_words(clock, twilio_settings, firm):
    pat = clients.add(firm, "Pat Landline", phone=LANDLINE)
    invites.send(pat, "sms")
    part = overview.of(firm).failed
    row = next(r for r in part.rows if r.client is not None)
    assert row.client.name == "Pat Landline"
    assert row.text.startswith("Invite SMS to ")
    assert "failed (the number is not a mobile number" in row.text
    assert "21614" not in row.text
    clock.shift(timedelta(days=8))
    assert overview.of(firm).failed.total == 0  # this week's, as the doctor counts them


def test_the_notices_channel_or_why_there_is_none(firm):
    seen = overview.of(firm)
    assert not seen.notices.ok and "notices" in seen.notices.text
    firms.set_notify_channel(firm, "C0NOTICE")
    seen = overview.of(firm.refreshed())
    assert seen.notices.ok and seen.notices.channel == "C0NOTICE"


def test_another_firms_clients_never_show(clock, firm, maria):
    other = firms.create("Other LLP", admin_email="olga@other.example",
                         admin_password="correct horse 3")
    invited(other, 2, "Olga")
    connected(clients.add(other, "Otto Other", phone="2125550180"), "chase")
    seen = overview.of(firm)
    assert (seen.invites.total, seen.restoring.total, seen.recent.total,
            seen.failed.total) == (0, 0, 0, 0)


# --- the Home in Slack -----------------------------------------------------------------------


def opened(web, slack, user: str = "UANN", team: str = TEAM, count: int = 1) -> dict:
    """Open the Home tab as `user`; the view Slack got (views.publish), and for whom."""
    response = event(web, {"type": "app_home_opened", "user": user, "channel": "D1",
                           "tab": "home", "event_ts": "1700000000.000100"}, team=team)
    assert response.status_code == 200
    call = slack.wait_for("views.publish", count)[-1]
    view = call["view"]
    return {"user": call["user_id"], "view": json.loads(view) if isinstance(view, str) else view}


def texts(view: dict) -> str:
    return "\n".join(json.dumps(block, ensure_ascii=False) for block in view["blocks"])


def buttons(view: dict) -> list[tuple[str, str]]:
    return [(e["action_id"], e["value"]) for block in view["blocks"]
            if block["type"] == "actions" for e in block["elements"]]


def test_staff_see_their_firm_at_a_glance(web, slack, twilio_settings, smith):
    maria = Client.get(Client.name == "Maria Gonzalez")
    invites.send(maria, "sms")
    ben = clients.add(smith, "Ben <!channel> Broken", phone="2125550160")
    connected(ben, "chase")
    broken(ben, "chase")
    invites.send(clients.add(smith, "Pat Landline", phone=LANDLINE), "sms")

    home = opened(web, slack)
    view, text = home["view"], texts(home["view"])
    assert home["user"] == "UANN" and view["type"] == "home"
    assert ":white_check_mark: Connected as *ann@smith.example* (admin) at *Smith &amp; Co*" in text
    assert "*Open invites* (2), soonest expiry first" in text
    assert re.search(r"\*Maria Gonzalez\* — SMS, expires <!date\^\d+\^[^>]+> \(\d days left\)",
                     text)
    assert ("remind", str(maria.id)) in buttons(view)
    assert ("resend", str(maria.id)) in buttons(view)
    assert ("revoke", str(maria.id)) in buttons(view)
    assert "*Needs restoring* (1)" in text and ":red_circle: Chase — since <!date^" in text
    assert ("ask_reconnect", str(ben.id)) in buttons(view)
    assert "Ben &lt;!channel&gt; Broken" in text and "<!channel>" not in text
    assert "*Accepted and connected, last 14 days* (2)" in text
    assert "Connected Chase" in text and "Accepted; client account ready" in text
    assert "*Not delivered, last 7 days*" in text
    assert "failed (the number is not a mobile number" in text
    assert "No channel chosen: notices go to admins by direct message" in text
    assert len(view["blocks"]) <= 100


def test_150_open_invites_stay_within_block_kits_100_blocks(web, slack, smith):
    invited(smith, 150)
    firms.set_notify_channel(smith, "C0NOTICE")

    view = opened(web, slack)["view"]
    text = texts(view)
    assert len(view["blocks"]) <= 100
    assert "*Open invites* (150), soonest expiry first" in text
    assert "and 140 more: `/ledgersync pending`" in text
    assert ":mega: Notices channel: <#C0NOTICE>" in text
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in view["blocks"])
    assert len(json.dumps(view)) < 100_000
    assert sum(1 for action, _ in buttons(view) if action == "remind") == 10


def test_every_part_full_stays_within_100_blocks_and_slacks_sizes():
    """Each part at its cap with 1,000 more, names and reasons at their longest."""
    firm = Firm(id=1, name="S" * 200, timezone="America/New_York")
    people = [Client(id=n, firm=firm, name=f"<{'x' * 200}>", phone="+12125550134")
              for n in range(overview.SHOWN)]
    long = "why " * 100

    def part(row) -> overview.Part:
        return overview.Part([row(c) for c in people], 1000 + overview.SHOWN)

    full = overview.Overview(
        firm, doctor.Check(False, long, long),
        part(lambda c: overview.OpenInvite(c, "sms", "reconnect", T0, "3 days left", UTC)),
        part(lambda c: overview.Restoring(c, ("Bank " * 50,) * 20, T0, T0, UTC)),
        part(lambda c: overview.Happened(c, T0, long, UTC)),
        part(lambda c: overview.Failed(c, T0, long, UTC)), now=T0, zone=UTC)
    staff = Staff(id=1, firm=firm, email="ann@smith.example", name="A" * 200, role="admin")
    view = home_views.staff(Actor("staff", firm, staff), full)
    assert len(view["blocks"]) <= 100
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in view["blocks"])
    assert len(json.dumps(view)) < 100_000
    assert texts(view).count("and 1000 more") == 4


def test_it_is_published_fresh_on_each_open(web, slack, smith):
    assert "*Open invites* — none open." in texts(opened(web, slack)["view"])
    invites.send(Client.get(Client.name == "Maria Gonzalez"), "sms")
    assert "*Open invites* (1)" in texts(opened(web, slack, count=2)["view"])


def test_support_sees_how_to_look_things_up(web, slack, smith):
    support.add("sam@ledgersync.example", slack_team_id=SUPPORT_TEAM, slack_user_id="USAM")
    home = opened(web, slack, user="USAM", team=SUPPORT_TEAM)
    text = texts(home["view"])
    assert home["user"] == "USAM"
    assert "*LedgerSync support* (sam@ledgersync.example)" in text
    for what in ("a client", "a number", "an email", "a firm"):
        assert f"• {what}: `/ledgersync" in text
    assert 'firm:\\"Smith &amp; Co\\"' in text
    assert "Open invites" not in text and buttons(home["view"]) == []


def test_someone_not_linked_sees_a_cross_and_connect(web, slack, smith):
    home = opened(web, slack, user="UNOBODY")
    assert home["user"] == "UNOBODY"
    assert ":x: *Not connected to LedgerSync.*" in texts(home["view"])
    assert buttons(home["view"]) == [("connect_start", "connect")]


def test_the_messages_tab_publishes_nothing(web, slack, smith):
    response = event(web, {"type": "app_home_opened", "user": "UANN", "channel": "D1",
                           "tab": "messages", "event_ts": "1700000000.000100"})
    assert response.status_code == 200
    assert slack_listeners_idle(web)
    assert slack.of("views.publish") == []


def test_a_failure_publishes_a_short_error_home(web, slack, smith, monkeypatch):
    def broken_overview(firm, *args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(overview, "of", broken_overview)
    text = texts(opened(web, slack)["view"])
    assert "Your LedgerSync Home couldn't be loaded just now" in text and "quote ref" in text
    assert "database went away" not in text


def home_click(web, action_id: str, value, *, user: str = "UANN", team: str = TEAM):
    """A button on the Home tab: a block action with a view and no response URL."""
    return interaction(web, {
        "type": "block_actions", "team": {"id": team}, "user": {"id": user, "team_id": team},
        "trigger_id": "trigger-home", "api_app_id": "A1", "container": {"type": "view"},
        "view": {"id": "VHOME", "type": "home", "callback_id": "", "private_metadata": ""},
        "actions": [{"type": "button", "action_id": action_id, "value": str(value),
                     "block_id": "b", "action_ts": "1"}]})


def test_a_button_on_the_home_acts_and_the_home_is_fresh_again(web, slack, smith):
    maria = Client.get(Client.name == "Maria Gonzalez")
    invites.send(maria, "sms")
    opened(web, slack)
    assert home_click(web, "revoke", maria.id).status_code == 200
    home = slack.wait_for("views.publish", 2)[-1]
    view = json.loads(home["view"]) if isinstance(home["view"], str) else home["view"]
    assert home["user_id"] == "UANN" and "*Open invites* — none open." in texts(view)
    assert "*Invite revoked* — 1: Maria Gonzalez" in texts(view)  # where the funnel has her
    assert Invite.get(Invite.client == maria.id).revoked_at is not None


def test_a_refused_button_on_the_home_is_told_by_direct_message(web, slack, smith):
    from core.records import SupportStaff

    SupportStaff.create(email="sue@ledgersync.example", slack_team_id=TEAM,
                        slack_user_id="USUE")
    maria = Client.get(Client.name == "Maria Gonzalez")
    home_click(web, "remind", maria.id, user="USUE")
    [told] = slack.wait_for("chat.postMessage")
    assert told["channel"] == "USUE" and "can't" in told["text"]
    assert slack.wait_for("views.publish")[-1]["user_id"] == "USUE"

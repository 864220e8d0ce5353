"""A firm's staff and LedgerSync's support team: `ledgersync firm create`, `staff …` and
`support …` (in this process, on SQLite and PostgreSQL), and `/ledgersync staff …`
(signed requests into the real Flask app)."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from click.testing import CliRunner

from cli.main import main
from core.firms import access, firms
from core.invitations import clients, invites
from core.platform import config, db
from core.platform.errors import Refused
from core.records import Event, Firm, Invite, Staff, SupportStaff
from tests.slack_requests import command
from tests.slack_requests import said as said_escaped
from tests.slack_standin import TEAM


@pytest.fixture
def cli(database):
    """`ledgersync …` run in this process against the test database (no Redis)."""
    config.use(config.settings().with_(redis_url="redis://127.0.0.1:1/0"))
    runner = CliRunner()

    def ledgersync(*args, ok=True, stdin=None):
        done = runner.invoke(main, list(args), input=stdin, env={"LEDGERSYNC_FIRM": None})
        assert done.exception is None or isinstance(done.exception, SystemExit), done.output
        assert (done.exit_code == 0) == ok, done.output
        return done.output

    return ledgersync


@pytest.fixture
def smith_cli(cli):
    cli("firm", "create", "Smith & Co", "--admin-email", "ann@smith.example",
        "--admin-password-stdin", stdin="correct horse 1\n")
    return cli


def staff(email: str) -> Staff | None:
    return Staff.get_or_none(Staff.email == email)


def said(slack, count=1) -> str:
    """What the app answered, as one string with its characters as they are."""
    return json.dumps(json.loads(said_escaped(slack, count)), ensure_ascii=False)


def kinds() -> list[str]:
    return [e.kind for e in Event.select().order_by(Event.id)]


# --- firm create ----------------------------------------------------------------------


def test_a_bad_admin_email_creates_nothing_and_a_retry_works(cli):
    out = cli("firm", "create", "Smith & Co", "--admin-email", "ann at smith",
              "--admin-password-stdin", stdin="correct horse 1\n", ok=False)
    assert "Error: 'ann at smith' is not an email address" in out
    assert (Firm.select().count(), Staff.select().count(), Event.select().count()) == (0, 0, 0)

    out = cli("firm", "create", "Smith & Co", "--admin-email", "Ann@Smith.example",
              "--admin-password-stdin", stdin="correct horse 1\n")
    assert "Created Smith & Co" in out
    ann = staff("ann@smith.example")
    assert ann.role == "admin" and ann.firm.name == "Smith & Co"
    assert kinds() == ["firm.created", "staff.added"]


def test_an_admin_email_already_taken_creates_no_second_firm(smith_cli):
    out = smith_cli("firm", "create", "Other LLP", "--admin-email", "ann@smith.example",
                    "--admin-password-stdin", stdin="correct horse 2\n", ok=False)
    assert "Error: ann@smith.example can't be used for a new account" in out
    assert [f.name for f in Firm.select()] == ["Smith & Co"]
    assert "Created Other LLP" in smith_cli(
        "firm", "create", "Other LLP", "--admin-email", "olga@other.example",
        "--admin-password-stdin", stdin="correct horse 2\n")


@pytest.mark.parametrize("stdin", ["correct horse 1\n", "correct horse 1\r\nsecond line\n",
                                   "correct horse 1"])
def test_the_password_comes_from_one_line_of_stdin(cli, stdin):
    cli("firm", "create", "Smith & Co", "--admin-email", "ann@smith.example",
        "--admin-password-stdin", stdin=stdin)
    assert firms.check_password(staff("ann@smith.example"), "correct horse 1")


def test_without_stdin_the_password_is_asked_for_hidden_and_twice(cli):
    out = cli("firm", "create", "Smith & Co", "--admin-email", "ann@smith.example",
              stdin="correct horse 1\ncorrect horse 1\n")
    assert "Admin password: \nRepeat for confirmation: \n" in out
    assert "correct horse" not in out
    assert firms.check_password(staff("ann@smith.example"), "correct horse 1")

    out = cli("firm", "create", "Other LLP", "--admin-email", "o@other.example",
              stdin="correct horse 2\ncorrect horse X\n", ok=False)
    assert "do not match" in out
    assert Firm.select().count() == 1


def test_a_password_on_the_command_line_is_refused(cli):
    out = cli("firm", "create", "Smith & Co", "--admin-email", "ann@smith.example",
              "--admin-password", "correct horse 1", ok=False)
    assert "No such option '--admin-password'" in out
    assert Firm.select().count() == 0


# --- staff on the command line --------------------------------------------------------


def test_staff_add_list_role_remove(smith_cli):
    out = smith_cli("staff", "add", "bob@smith.example", "--name", "Bob  Baker",
                    "--password-stdin", stdin="correct horse 2\n")
    assert out.startswith("Added bob@smith.example (staff) to Smith & Co.")
    assert "Password" not in out
    out = smith_cli("staff", "add", "cy@smith.example", "--role", "admin",
                    stdin="correct horse 3\ncorrect horse 3\n")
    assert "Added cy@smith.example (admin)" in out and "correct horse" not in out
    assert firms.check_password(staff("bob@smith.example"), "correct horse 2")
    assert firms.check_password(staff("cy@smith.example"), "correct horse 3")

    lines = smith_cli("staff", "list").splitlines()
    assert lines[0].split() == ["ann@smith.example", "admin", "-", "no", "Slack", "link"]
    assert lines[1].split()[:2] == ["cy@smith.example", "admin"]
    assert lines[2].split()[:4] == ["bob@smith.example", "staff", "Bob", "Baker"]
    assert lines[3] == "3 people."

    assert "bob@smith.example is now admin." in smith_cli("staff", "role", "BOB@smith.example",
                                                          "admin")
    assert "Removed cy@smith.example from Smith & Co." in smith_cli("staff", "remove",
                                                                    "cy@smith.example")
    assert staff("cy@smith.example") is None and staff("bob@smith.example").role == "admin"


@pytest.mark.parametrize("args,stdin,message", [
    (["staff", "add", "ann@smith.example", "--password-stdin"], "correct horse 9\n",
     "Error: ann@smith.example is already at Smith & Co"),
    (["staff", "add", "dan@smith.example", "--password-stdin"], "short\n",
     "Error: A password needs at least 10 characters"),
    (["staff", "add", "dan@", "--password-stdin"], "correct horse 9\n",
     "Error: 'dan@' is not an email address"),
    (["staff", "add", "dan@smith.example", "--role", "owner"], None, "'owner' is not one of"),
    (["staff", "role", "nobody@smith.example", "admin"], None,
     "Error: No one at Smith & Co signs in as nobody@smith.example"),
    (["staff", "remove", "nobody@smith.example"], None, "Error: No one at Smith & Co"),
])
def test_staff_errors_are_one_clear_line(smith_cli, args, stdin, message):
    assert message in smith_cli(*args, stdin=stdin, ok=False)
    assert Staff.select().count() == 1


def test_the_last_admin_can_be_neither_removed_nor_demoted(smith_cli):
    only = "Error: ann@smith.example is the only admin of Smith & Co; make someone else admin"
    assert only in smith_cli("staff", "remove", "ann@smith.example", ok=False)
    assert only in smith_cli("staff", "role", "ann@smith.example", "staff", ok=False)
    assert staff("ann@smith.example").role == "admin"

    smith_cli("staff", "add", "bob@smith.example", "--password-stdin", stdin="correct horse 2\n")
    smith_cli("staff", "role", "bob@smith.example", "admin")
    assert "ann@smith.example is now staff." in smith_cli("staff", "role", "ann@smith.example",
                                                          "staff")
    assert "only admin of Smith & Co" in smith_cli("staff", "remove", "bob@smith.example",
                                                   ok=False)
    smith_cli("staff", "remove", "ann@smith.example")
    assert [(s.email, s.role) for s in Staff.select()] == [("bob@smith.example", "admin")]


def test_two_admins_demoting_each_other_at_once_leave_one_admin(firm):
    firms.add_staff(firm, "bob@smith.example", "correct horse 2", role="admin")
    start = threading.Barrier(2)

    def demote(email):
        with db.connection():
            start.wait()
            try:
                firms.set_role(firm, email, "staff")
            except Refused:
                return "refused"
            return "demoted"

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(demote, ["ann@smith.example", "bob@smith.example"]))
    assert sorted(outcomes) == ["demoted", "refused"]
    assert Staff.select().where(Staff.role == "admin").count() == 1


def test_staff_commands_act_on_one_firm_only(smith_cli):
    smith_cli("firm", "create", "Other LLP", "--admin-email", "olga@other.example",
              "--admin-password-stdin", stdin="correct horse 2\n")
    assert "Which firm?" in smith_cli("staff", "list", ok=False)
    assert "olga@other.example" not in smith_cli("--firm", "Smith", "staff", "list")
    out = smith_cli("--firm", "Other LLP", "staff", "remove", "ann@smith.example", ok=False)
    assert "Error: No one at Other LLP signs in as ann@smith.example" in out
    smith_cli("--firm", "Other LLP", "staff", "add", "pat@other.example", "--password-stdin",
              stdin="correct horse 3\n")
    assert staff("pat@other.example").firm.name == "Other LLP"
    assert staff("ann@smith.example") is not None


def test_removing_staff_keeps_the_invites_they_sent(smith_cli):
    smith_cli("staff", "add", "bob@smith.example", "--password-stdin", stdin="correct horse 2\n")
    firm = Firm.get(Firm.name == "Smith & Co")
    maria = clients.add(firm, "Maria Gonzalez", email="maria@example.com")
    invites.send(maria, "email", by=staff("bob@smith.example"))
    smith_cli("staff", "remove", "bob@smith.example")
    assert Invite.get(Invite.client == maria).sent_by is None


def test_staff_password_is_set_from_the_cli_and_ends_a_slack_link(smith_cli):
    ann = staff("ann@smith.example")
    assert access.connect(TEAM, "UANN", "ann@smith.example", "correct horse 1").ok
    assert "Set a new password for ann@smith.example" in smith_cli(
        "staff", "password", "ann@smith.example", "--password-stdin", stdin="correct horse 7\n")
    assert firms.check_password(ann.refreshed(), "correct horse 7")
    assert access.resolve(TEAM, "UANN").kind == "nobody"


# --- support --------------------------------------------------------------------------


def test_support_add_list_remove(cli):
    out = cli("support", "add", "Sam@LedgerSync.example", "--name", "Sam",
              "--slack-team", "T0SUPPORT", "--slack-user", "usam")
    assert out == "Added sam@ledgersync.example to LedgerSync support: Slack user USAM in " \
                  "T0SUPPORT.\n"
    assert access.resolve("T0SUPPORT", "USAM").kind == "support"
    assert "no Slack user" in cli("support", "add", "kim@ledgersync.example")
    lines = cli("support", "list").splitlines()
    assert lines[0].split() == ["kim@ledgersync.example", "-", "no", "Slack", "link"]
    assert lines[1].split() == ["sam@ledgersync.example", "Sam", "Slack", "T0SUPPORT/USAM"]
    assert lines[2] == "2 people on support."

    assert "Removed sam@ledgersync.example from LedgerSync support." in cli(
        "support", "remove", "sam@ledgersync.example")
    assert access.resolve("T0SUPPORT", "USAM").kind == "nobody"
    assert "Error: No one on LedgerSync support signs in as sam@ledgersync.example" in cli(
        "support", "remove", "sam@ledgersync.example", ok=False)


@pytest.mark.parametrize("args,message", [
    (["--slack-team", "T0SUPPORT"], "Give both --slack-team and --slack-user"),
    (["--slack-team", "nope", "--slack-user", "U0SAM"], "'NOPE' is not a Slack workspace id"),
    (["--slack-team", "T0SUPPORT", "--slack-user", "<@U0SAM>"], "is not a Slack user id"),
    (["--slack-team", "T0SUPPORT", "--slack-user", "USAM"], "USAM in T0SUPPORT is already"),
    ([], "sam@ledgersync.example is already on LedgerSync support"),
])
def test_support_errors_are_one_clear_line(cli, args, message):
    cli("support", "add", "sam@ledgersync.example", "--slack-team", "T0SUPPORT",
        "--slack-user", "USAM")
    email = "sam@ledgersync.example" if not args else "kim@ledgersync.example"
    assert message in cli("support", "add", email, *args, ok=False)
    assert SupportStaff.select().count() == 1


def test_linked_staff_cannot_also_be_support(smith_cli):
    access.connect(TEAM, "UANN", "ann@smith.example", "correct horse 1")
    out = smith_cli("support", "add", "ann@ledgersync.example", "--slack-team", TEAM,
                    "--slack-user", "UANN", ok=False)
    assert "support needs a Slack user of its own" in out
    assert access.resolve(TEAM, "UANN").role == "admin"


def test_every_change_is_in_the_event_log(smith_cli):
    smith_cli("staff", "add", "bob@smith.example", "--password-stdin", stdin="correct horse 2\n")
    smith_cli("staff", "role", "bob@smith.example", "admin")
    smith_cli("staff", "password", "bob@smith.example", "--password-stdin",
              stdin="correct horse 3\n")
    smith_cli("staff", "remove", "bob@smith.example")
    smith_cli("support", "add", "sam@ledgersync.example")
    smith_cli("support", "remove", "sam@ledgersync.example")
    events = list(Event.select().order_by(Event.id))
    assert [(e.kind, e.actor) for e in events] == [
        ("firm.created", "cli"), ("staff.added", "cli"), ("staff.added", "cli"),
        ("staff.role_changed", "cli"), ("staff.password_changed", "cli"),
        ("staff.removed", "cli"), ("support.added", "cli"), ("support.removed", "cli")]
    assert events[5].detail == {"email": "bob@smith.example", "role": "admin"}
    assert events[6].firm is None and events[6].detail["email"] == "sam@ledgersync.example"
    assert "correct horse" not in str([e.detail for e in events])


# --- Slack ----------------------------------------------------------------------------


def test_an_admin_adds_a_colleague_from_slack(web, slack, smith):
    command(web, slack, "staff add <@UDAN|dan> dan@smith.example")
    assert "Added <@UDAN> (dan@smith.example) as *staff*" in said(slack)
    dan = staff("dan@smith.example")
    assert (dan.firm_id, dan.role, dan.slack_team_id, dan.slack_user_id) == \
           (smith.id, "staff", TEAM, "UDAN")
    assert not firms.check_password(dan, "")
    assert access.resolve(TEAM, "UDAN").role == "staff"
    command(web, slack, "pending", user="UDAN")
    assert "0 open invites" in said(slack, 2)

    command(web, slack, "staff admin eve@smith.example <@UEVE|eve> add")
    assert "Added <@UEVE> (eve@smith.example) as *admin*" in said(slack, 3)
    ann = staff("ann@smith.example")
    added = Event.select().where(Event.kind == "staff.added", Event.actor == f"staff:{ann.id}")
    assert [e.detail["email"] for e in added] == ["dan@smith.example", "eve@smith.example"]
    linked = Event.select().where(Event.kind == "slack.connected").order_by(Event.id)
    assert [(e.actor, e.detail.get("email")) for e in linked] == [
        (f"staff:{ann.id}", None), (f"staff:{ann.id}", "dan@smith.example"),
        (f"staff:{ann.id}", "eve@smith.example")]


def test_only_admins_add_staff_from_slack(web, slack, smith):
    assert access.connect(TEAM, "UBOB", "bob@smith.example", "correct horse 2").ok
    command(web, slack, "staff add <@UDAN|dan> dan@smith.example", user="UBOB")
    assert "the staff role can't add or remove staff; ask an admin" in said(slack)
    SupportStaff.create(email="sam@ledgersync.example", slack_team_id="T0SUPPORT",
                        slack_user_id="USAM")
    command(web, slack, "staff add <@UDAN|dan> dan@smith.example firm:Smith", user="USAM",
            team="T0SUPPORT")
    assert "LedgerSync support can't add or remove staff" in said(slack, 2)
    command(web, slack, "staff remove bob@smith.example", user="UBOB")
    command(web, slack, "staff role bob@smith.example admin", user="UBOB")
    text = said(slack, 4)
    assert "can't add or remove staff" in text and "can't change roles" in text
    command(web, slack, "staff add <@UDAN|dan> dan@smith.example", user="USTRANGER")
    assert "Connect your LedgerSync account first" in said(slack, 5)
    assert staff("dan@smith.example") is None
    assert staff("bob@smith.example").role == "staff"


def test_slack_staff_list_remove_and_role(web, slack, smith, other):
    command(web, slack, "staff")
    text = said(slack)
    assert "*Smith &amp; Co*: 2 people" in text
    assert "*ann@smith.example* — admin · <@UANN>" in text
    assert "*bob@smith.example* — staff · not connected in Slack" in text
    assert "olga" not in text

    command(web, slack, "staff role ann@smith.example staff")
    assert "ann@smith.example is the only admin of Smith &amp; Co" in said(slack, 2)
    command(web, slack, "staff remove ann@smith.example")
    assert "the only admin" in said(slack, 3).split("staff remove", 1)[-1]
    command(web, slack, "staff remove olga@other.example")
    assert "No one at Smith &amp; Co signs in as olga@other.example" in said(slack, 4)
    command(web, slack, "staff remove bob@smith.example")
    assert "Removed bob@smith.example from Smith &amp; Co" in said(slack, 5)
    command(web, slack, "role ann@smith.example admin")
    assert "ann@smith.example is now *admin*" in said(slack, 6)
    assert staff("bob@smith.example") is None and staff("olga@other.example") is not None
    removed = Event.get(Event.kind == "staff.removed")
    assert removed.actor == f"staff:{staff('ann@smith.example').id}"


def test_slack_staff_add_refuses_what_it_cannot_do(web, slack, smith):
    command(web, slack, "staff add dan@smith.example")
    assert "Mention one colleague and give their email" in said(slack)
    command(web, slack, "staff add <@UANN|ann> new@smith.example")
    assert "That Slack user is already connected to a LedgerSync account" in said(slack, 2)
    command(web, slack, "staff add <@UDAN|dan> <!channel>")
    text = said(slack, 3)
    assert "&lt;!channel&gt;" in text and "<!channel>" not in text
    command(web, slack, "staff fire bob@smith.example")
    assert "`/ledgersync staff` lists your colleagues" in said(slack, 4)
    assert Staff.select().count() == 2


def test_help_names_the_staff_commands(web, slack, smith):
    command(web, slack, "help")
    text = said(slack)
    assert "/ledgersync staff add @colleague &lt;email&gt; [admin|staff]" not in text
    assert "/ledgersync staff add @colleague <email> [admin|staff]" in text
    assert "/ledgersync staff remove <email>" in text

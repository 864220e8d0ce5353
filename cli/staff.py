"""`ledgersync staff ...` (a firm's people) and `ledgersync support ...` (LedgerSync's
own support team). Passwords come from a hidden prompt or standard input, never
from the command line."""

from __future__ import annotations

import click

from cli.common import current_firm, password
from cli.render import plural
from core.firms import firms, support

ACTOR = "cli"
ROLE = click.Choice(firms.ROLES)


def _slack(team_id: str | None, user_id: str | None, linked: bool = True) -> str:
    return f"Slack {team_id}/{user_id}" if team_id and user_id and linked else "no Slack link"


# --- staff ----------------------------------------------------------------------------


@click.group("staff")
def staff_group():
    """The firm's staff: add, list, remove, change roles."""


@staff_group.command("add")
@click.argument("email")
@click.option("--name", default="", help="Their name, as colleagues know them.")
@click.option("--role", type=ROLE, default="staff", show_default=True)
@click.option("--password-stdin", "from_stdin", is_flag=True,
              help="Read their password from standard input (one line); "
                   "otherwise it is asked for, hidden.")
def staff_add(email, name, role, from_stdin):
    """Add EMAIL to the firm. They connect Slack with this email and password."""
    firm = current_firm()
    staff = firms.add_staff(firm, email, password(from_stdin), name=name, role=role,
                            actor=ACTOR)
    click.echo(f"Added {staff.email} ({staff.role}) to {firm.name}. "
               "They run /ledgersync connect in Slack with this email and password.")


@staff_group.command("list")
def staff_list():
    """Everyone at the firm, admins first."""
    rows = firms.staff_of(current_firm())
    for staff in rows:
        linked = _slack(staff.slack_team_id, staff.slack_user_id, bool(staff.slack_linked_at))
        click.echo(f"{staff.email:<32} {staff.role:<6} {staff.name or '-':<24} {linked}")
    click.echo(plural(len(rows), "person", "people") + ".")


@staff_group.command("remove")
@click.argument("email")
def staff_remove(email):
    """Remove EMAIL. Their account is deleted and their Slack link ends."""
    firm = current_firm()
    staff = firms.remove_staff(firm, email, actor=ACTOR)
    click.echo(f"Removed {staff.email} from {firm.name}.")


@staff_group.command("role")
@click.argument("email")
@click.argument("role", type=ROLE)
def staff_role(email, role):
    """Make EMAIL an admin or staff. A firm always keeps one admin."""
    staff = firms.set_role(current_firm(), email, role, actor=ACTOR)
    click.echo(f"{staff.email} is now {staff.role}.")


@staff_group.command("password")
@click.argument("email")
@click.option("--password-stdin", "from_stdin", is_flag=True,
              help="Read the password from standard input (one line); "
                   "otherwise it is asked for, hidden.")
def staff_password(email, from_stdin):
    """Set EMAIL's password. A colleague added from Slack has none until then."""
    staff = firms.member(current_firm(), email)
    firms.set_password(staff, password(from_stdin), actor=ACTOR)
    click.echo(f"Set a new password for {staff.email}. Their Slack link, if any, ended: "
               "they run /ledgersync connect again.")


# --- support --------------------------------------------------------------------------


@click.group("support")
def support_group():
    """LedgerSync's own support team.

    Every firm, read-only, from its own Slack.
    """


@support_group.command("add")
@click.argument("email")
@click.option("--name", default="", help="Their name.")
@click.option("--slack-team", metavar="T", help="Their Slack workspace id (T0123ABCD).")
@click.option("--slack-user", metavar="U", help="Their Slack user id (U0123ABCD).")
def support_add(email, name, slack_team, slack_user):
    """Put EMAIL on LedgerSync support. Link their Slack user with both ids."""
    if bool(slack_team) != bool(slack_user):
        raise click.UsageError("Give both --slack-team and --slack-user, or neither")
    member = support.add(email, name=name, slack_team_id=slack_team, slack_user_id=slack_user,
                         actor=ACTOR)
    where = (f"Slack user {member.slack_user_id} in {member.slack_team_id}"
             if member.slack_user_id else "no Slack user, so they see nothing in Slack yet")
    click.echo(f"Added {member.email} to LedgerSync support: {where}.")


@support_group.command("list")
def support_list():
    """Everyone on LedgerSync support."""
    rows = support.members()
    for member in rows:
        click.echo(f"{member.email:<32} {member.name or '-':<24} "
                   f"{_slack(member.slack_team_id, member.slack_user_id)}")
    click.echo(plural(len(rows), "person", "people") + " on support.")


@support_group.command("remove")
@click.argument("email")
def support_remove(email):
    """Take EMAIL off LedgerSync support."""
    member = support.remove(email, actor=ACTOR)
    click.echo(f"Removed {member.email} from LedgerSync support.")

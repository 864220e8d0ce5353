"""`ledgersync`: the command line over the same core the Slack bot and SMS use.

Errors are one clear line and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
from pathlib import Path
from urllib.parse import urlsplit

import click
from dotenv import load_dotenv
from peewee import OperationalError, ProgrammingError

import wiring
from cli.common import current_firm, password
from core.firms import firms, workspaces
from core.invitations import clients, invites
from core.messaging import outbox
from core.messaging.quiet_hours import zone_for
from core.platform import clock, config, db, names
from core.platform.errors import Ambiguous, LedgerSyncError
from core.records import migrations
from core.reports import doctor, status
from core.reports.status import local_text

from . import banks as bank_cli
from . import bulk_commands, funnel_commands, processes, render, settings_commands, staff

log = logging.getLogger("ledgersync")


class Group(click.Group):
    """Turns every failure into one line on stderr and an exit code."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except LedgerSyncError as problem:
            _refused(problem)
            ctx.exit(1)
        except (OperationalError, ProgrammingError) as problem:
            if "no such table" in str(problem) or "does not exist" in str(problem):
                click.echo("Error: the database is not set up; run `ledgersync db upgrade`",
                           err=True)
            else:
                click.echo(f"Error: the database did not answer ({type(problem).__name__})",
                           err=True)
            ctx.exit(2)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except BrokenPipeError:  # `ledgersync outbox | head`: the reader has gone
            _pipe_closed()
        except Exception as problem:  # noqa: BLE001 - one line, never a traceback
            log.debug("unexpected error", exc_info=True)
            click.echo(f"Error: something went wrong ({type(problem).__name__}); "
                       "run with LEDGERSYNC_DEBUG=1 to see details", err=True)
            if os.environ.get("LEDGERSYNC_DEBUG"):
                raise
            ctx.exit(3)


def _refused(problem: LedgerSyncError) -> None:
    """The problem in one line; the candidates of an ambiguous name, or the commands
    that put it right."""
    click.echo(f"Error: {problem}", err=True)
    if isinstance(problem, Ambiguous):
        for candidate in problem.candidates[:10]:
            click.echo(f"  - {render.who(candidate)}", err=True)
    for line in render.fixes(problem):
        click.echo(f"  fix: {line}", err=True)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--firm", "firm_name", envvar="LEDGERSYNC_FIRM", metavar="NAME",
              help="Firm to act for (needed when the database holds more than one).")
@click.pass_context
def main(ctx, firm_name):
    """LedgerSync Connect: invite clients to connect their banks, and follow up."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if ctx.invoked_subcommand not in CREATE_A_DATABASE and not _asking_for_help():
        _database_must_exist()
    try:
        # The web app wires itself (serve); the clock and the schema need no queue.
        wiring.wire(jobs=ctx.invoked_subcommand not in {"cron", "serve", "db"})
    except LedgerSyncError as problem:
        click.echo(f"Error: {problem}", err=True)
        ctx.exit(2)
    ctx.obj = {"firm": firm_name}
    ctx.call_on_close(db.database.close)


CREATE_A_DATABASE = {"db", "demo"}  # (scripts/try runs both before `serve`)


def _asking_for_help() -> bool:
    return any(arg in {"--help", "-h"} for arg in sys.argv[1:])


def _sqlite_file(url: str) -> Path | None:
    """The file of an `sqlite:///path` URL (as peewee reads it), else None."""
    parts = urlsplit(url)
    if not parts.scheme.startswith("sqlite") or parts.path[1:] in {"", ":memory:"}:
        return None
    return Path(parts.path[1:])


def _database_must_exist() -> None:
    """An SQLite database that isn't there is not made here, nor a secret key beside it
    (a command run from the wrong directory would start an empty one): say where we
    looked and how to point at the real one. Only `db upgrade` and `demo` make one."""
    in_use = config.in_use()  # (settings a caller put in place: tests, an embedding)
    load_dotenv(".env", override=False)  # as the settings will read it
    url = (in_use.database_url if in_use else
           os.environ.get("DATABASE_URL") or config.Settings().database_url)
    path = _sqlite_file(url)
    if path is None or path.exists():
        return
    whence = ("DATABASE_URL" if in_use or os.environ.get("DATABASE_URL")
              else "the default, under this directory")
    raise click.ClickException(
        f"No database at {path.resolve()} ({whence}). Run this from the directory where "
        "LedgerSync is set up, point DATABASE_URL at its database (here or in a .env file "
        "in this directory), or make a new one with `ledgersync db upgrade`.")


# --- database and firms -------------------------------------------------------------


@main.group("db")
def db_group():
    """Create or upgrade the database."""


@db_group.command("upgrade")
def db_upgrade():
    """Create the database, or upgrade it in place.

    A new database gets the latest schema; an existing one has the pending migrations
    applied, in place.
    """
    applied = migrations.upgrade()
    click.echo("\n".join(applied) if applied else
               f"Already at schema version {migrations.current_version()}.")


@main.group("firm")
def firm_group():
    """Create, list and set up firms.

    Their people: `ledgersync staff`.
    """


@firm_group.command("create")
@click.argument("name")
@click.option("--admin-email", required=True, help="The first admin's LedgerSync email.")
@click.option("--admin-password-stdin", "from_stdin", is_flag=True,
              help="Read the admin's password from standard input (one line); "
                   "otherwise it is asked for, hidden.")
@click.option("--timezone", default="America/New_York", show_default=True)
@click.option("--region", default="US", show_default=True, help="Default phone region.")
def firm_create(name, admin_email, from_stdin, timezone, region):
    """Create a firm and its first admin (both, or nothing)."""
    firm = firms.create(name, admin_email=admin_email,
                        admin_password=password(from_stdin, "Admin password"),
                        timezone=timezone, phone_region=region, actor="cli")
    click.echo(f"Created {firm.name} (id {firm.id}) with admin {admin_email}.")


@firm_group.command("list")
def firm_list():
    """List firms."""
    mode = config.settings().slack_mode
    for firm in firms.listed():
        click.echo(f"{firm.id:>4}  {firm.name}  ({firm.timezone}; "
                   f"{workspaces.state(firm, mode)})")


@main.command("doctor")
def doctor_cmd():
    """Check the firm's set-up, point by point.

    Each point is ✅, or ❌ with the fix.
    """
    for check in doctor.run(current_firm()):
        click.echo(f"{'✅' if check.ok else '❌'} {check.text}")
        if check.fix:
            click.echo(f"   {check.fix}")


# --- clients ------------------------------------------------------------------------


@main.group("clients")
def clients_group():
    """Add, import and list clients."""


@clients_group.command("list")
@click.argument("filter_text", metavar="[FILTER]", default="")
def clients_list(filter_text):
    """List clients, or those matching FILTER.

    FILTER is part of a name, a phone number or an email.
    """
    rows = clients.search(current_firm(), filter_text)
    for client in rows:
        click.echo(render.client_row(client))
    click.echo(f"{len(rows)} client{'s' if len(rows) != 1 else ''}.")


@clients_group.command("add")
@click.argument("name")
@click.option("--phone", help="Mobile number, any common format.")
@click.option("--email")
@click.option("--timezone", help="The client's time zone, e.g. America/Chicago.")
@click.option("--bank", "banks", multiple=True, help="Pre-select a bank (repeatable).")
@click.option("--language", help="en or es: the language of their texts, emails and pages "
                                  "(default: the firm's).")
def clients_add(name, phone, email, timezone, banks, language):
    """Add a client.

    A name, and a mobile number or an email to invite them by.
    """
    client = clients.add(current_firm(), name, phone=phone, email=email, timezone=timezone,
                         banks=list(banks), language=language, actor="cli")
    click.echo(f"Added {render.who(client)}.")
    if not (client.phone or client.email):
        click.echo(f"Note: {client.name} {clients.NO_WAY_TO_INVITE}: "
                   f"ledgersync clients update {shlex.quote(client.name)} --phone NUMBER "
                   "(or --email ADDRESS).", err=True)


@clients_group.command("update")
@click.argument("client")
@click.option("--name", help="A new name.")
@click.option("--phone", help="A new mobile number (\"\" to remove it).")
@click.option("--email", help="A new email (\"\" to remove it).")
@click.option("--timezone", help="The client's time zone, e.g. America/Chicago.")
@click.option("--language", help="en or es (\"\" for the firm's).")
@click.option("--bank", "banks", multiple=True,
              help="The banks to pre-select, replacing the list (repeatable).")
def clients_update(client, name, phone, email, timezone, language, banks):
    """Change a client's details.

    Their name, number, email, time zone, language or pre-selected banks.
    """
    found = _client(client)
    changes = {key: value for key, value in {
        "name": name, "phone": phone, "email": email, "timezone": timezone,
        "language": language, "banks": list(banks) if banks else None}.items()
        if value is not None}
    if not changes:
        raise click.UsageError("Say what to change: --name, --phone, --email, --timezone, "
                               "--language or --bank.")
    updated = clients.update(found, actor="cli", **changes)
    click.echo(f"Updated {render.who(updated)}.")


@clients_group.command("import")
@click.argument("csv_file", type=click.File("r", encoding="utf-8-sig"))
def clients_import(csv_file):
    """Import clients from a CSV file.

    Columns: name, email, phone, banks, language.
    """
    report = clients.import_csv(current_firm(), csv_file.read(), actor="cli")
    for row in report.rows:
        reason = f": {row.reason}" if row.reason else ""
        click.echo(f"row {row.line:>4}  {row.outcome:<9} {row.name or '(no name)'}{reason}")
    click.echo(report.summary.capitalize() + ".")


# --- invites ------------------------------------------------------------------------


def _client(query):
    return clients.find(current_firm(), query)


channel_options = [
    click.option("--sms", "channel", flag_value="sms", help="Send by text message."),
    click.option("--email", "channel", flag_value="email", help="Send by email."),
]


def with_channel(f):
    for option in reversed(channel_options):
        f = option(f)
    return f


@main.command()
@click.argument("client")
@with_channel
@click.option("--reconnect", is_flag=True, help="Ask to restore broken bank connections.")
@click.option("--bank", "banks", multiple=True, help="Pre-select a bank (repeatable).")
def invite(client, channel, reconnect, banks):
    """Invite CLIENT to connect their banks.

    CLIENT is a name, a phone number or an email.
    """
    sent = invites.send(_client(client), channel, purpose="reconnect" if reconnect else "connect",
                        banks=list(banks) or None)
    click.echo(render.sent(sent, "Invited"))


@main.command()
@click.argument("client")
@with_channel
@click.option("--force", is_flag=True, help="Send even to a number or email someone said "
              "isn't CLIENT's, once you have checked it with them.")
def resend(client, channel, force):
    """Send CLIENT a new link; the old one stops working."""
    sent = invites.resend(_client(client), channel, checked=force)
    click.echo(render.sent(sent, "Sent a new link to"))


@main.command()
@click.argument("client")
@click.option("--force", is_flag=True, help="Send even if reminded in the last 24 hours.")
def remind(client, force):
    """Remind CLIENT about their open invite (same link)."""
    click.echo(render.sent(invites.remind(_client(client), force=force), "Reminded"))


@main.command()
@click.argument("client")
def revoke(client):
    """Withdraw CLIENT's open invite.

    The link stops working and they are signed out of their account.
    """
    found = _client(client)
    revoked = invites.revoke(found)
    click.echo(f"Revoked {found.name}'s access: {revoked}.")


@main.command("status")
@click.argument("client")
def status_cmd(client):
    """What happened with CLIENT.

    The invite timeline, deliveries and bank connections.
    """
    click.echo(render.status(status.for_client(_client(client))))


@main.command()
def pending():
    """Open invites, soonest expiry first."""
    now = clock.now()
    rows = invites.pending(current_firm(), now)
    for invite in rows:
        tz = zone_for(invite.client)
        days = (invite.expires_at - now).days
        left = f"{days} day{'s' if days != 1 else ''} left" if days else "expires today"
        click.echo(f"{invite.client.name:<30} {invite.channel:<5} works until "
                   f"{local_text(invite.expires_at, tz)} ({left})")
    click.echo(f"{len(rows)} open invite{'s' if len(rows) != 1 else ''}.")


@main.command("outbox")
@click.option("--limit", default=10, show_default=True)
def outbox_cmd(limit):
    """The messages in the local outbox.

    Kept when no Twilio or SMTP is set up; oldest first.
    """
    rows = outbox.latest(limit=limit)
    if not rows:
        click.echo("The outbox is empty.")
        return
    click.echo(f"The last {render.plural(len(rows), 'message')}, oldest first; each time "
               "in its recipient's zone, with UTC beside it.\n")
    for message in reversed(rows):
        click.echo(render.message(message))


@main.command("text-in")
@click.argument("phone")
@click.argument("body")
def text_in(phone, body):
    """Play a client's text to us.

    As Twilio would post it: STOP, HELP, NEW, a question.
    """
    import secrets

    from core.invitations import client_texts
    from core.platform import phones

    region = current_firm().phone_region
    answer = client_texts.received(client_texts.Inbound(
        provider_id=f"SMlocal{secrets.token_hex(13)}", from_addr=phones.normalize(phone, region),
        to_addr="local", body=body))
    click.echo(f"Answered: {answer.text}" if answer.text else "No answer texted back.")
    if answer.action == "forwarded":
        click.echo("Passed to the firm (its Slack channel, or the outbox).")


firm_group.add_command(settings_commands.firm_set)
clients_group.add_command(settings_commands.clients_language)
main.add_command(bulk_commands.invite_all)
main.add_command(bulk_commands.bulk_group)
main.add_command(staff.staff_group)
main.add_command(staff.support_group)
main.add_command(funnel_commands.funnel)
bank_cli.register(main)  # accounts, transactions, banks sync|auto-reconnect, api-tokens


# --- bank connections -------------------------------------------------------------


@main.group("connections")
def connections_group():
    """A client's bank connections.

    The sandbox provider's, in development.
    """


@connections_group.command("list")
@click.argument("client")
def connections_list(client):
    """CLIENT's bank connections and their health."""
    from core.banking import connections

    rows = connections.for_client(_client(client))
    for c in rows:
        click.echo(f"{c.id:>5}  {c.institution_name:<30} {c.status.replace('_', ' ')}")
    click.echo(f"{len(rows)} connection{'s' if len(rows) != 1 else ''}.")


@connections_group.command("break")
@click.argument("client")
@click.argument("bank")
def connections_break(client, bank):
    """Mark CLIENT's BANK connection as broken.

    It then needs restoring: a way to try restoring.
    """
    from core.banking import connections

    found = _client(client)
    key = names.name_key(bank)
    matches = [c for c in connections.for_client(found)
               if key and key in names.name_key(c.institution_name)]
    if len(matches) != 1:
        raise click.ClickException(f"{found.name} has no single connection matching '{bank}'")
    connections.mark_broken(matches[0])
    click.echo(f"{found.name}'s {matches[0].institution_name} connection now needs restoring.")


# --- processes ----------------------------------------------------------------------

DEMO_CLIENTS = [
    ("Maria Gonzalez", "(415) 555-2671", "maria@example.com", ["Chase", "Ally Bank"]),
    ("Acme Co", "", "books@acme.example", ["Bank of America"]),
    ("John Smith", "(212) 555-0143", "", []),
    ("Jane Smith", "(646) 555-0188", "jane.smith@example.com", []),
]


@main.command()
def demo():
    """Add a demo firm and clients.

    Only when the database has none; then show what to try.
    """
    from core.records import Firm

    if not Firm.select().exists():
        firm = firms.create("Demo Accounting", admin_email="admin@demo.example",
                            admin_password="demo-password-1")
        for name, phone, email, banks in DEMO_CLIENTS:
            clients.add(firm, name, phone=phone or None, email=email or None, banks=banks)
        bank_cli.demo_connection(firm)  # Acme Co's bank: accounts to read at once
    settings = config.settings()
    click.echo(render.GUIDE.format(db=settings.database_url, base=settings.public_base_url))


@main.command()
@click.option("--port", default=5000, show_default=True, envvar="PORT")
@click.option("--host", default="127.0.0.1", show_default=True)
def serve(port, host):
    """Run the web app, a worker and the sweep.

    For development and trying it out (production: the Procfile).
    """
    processes.serve(host, port)


@main.command()
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--fork", is_flag=True,
              help="Fork a process for every job (isolation, at ~30 ms a job).")
def worker(burst, fork):
    """Run an RQ worker with its scheduler.

    It takes the queues paced, high, default and bulk, in that order.

    Jobs run in the worker's own process: forking one per job cost most of a job's
    time (bench/slack_ack.py). A job that overruns its timeout is still stopped
    (RQ's alarm), and one whose worker dies is found again by the sweep."""
    processes.work(burst=burst, fork=fork)


@main.command()
def cron():
    """Run the periodic sweep (RQ cron). Run exactly one of these."""
    processes.clock()


@main.command("sweep")
def sweep_cmd():
    """Do now whatever is due and was not done.

    Reminders, expiries and deliveries.
    """
    from core.invitations import sweep

    click.echo(f"Sweep: {sweep.run()}.")


def _pipe_closed():
    """The reader of our output has gone (`| head`): stop quietly, as Unix tools do —
    no message, exit 141 (128 + SIGPIPE). Whatever is still buffered for stdout goes
    to /dev/null, so Python's own flush at exit can't complain either."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    sys.exit(141)


def run():
    try:
        main(standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        _pipe_closed()

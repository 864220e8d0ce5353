"""`ledgersync invite-all` and `ledgersync bulk ...`: many clients invited at once.

A run is prepared (who gets what, who is skipped and why), confirmed, then sent at
the sender's pace by the workers (or right here when no Redis answers).
"""

from __future__ import annotations

import csv
import io
import sys
import time

import click

from cli.common import current_firm
from core.invitations import bulk_plan, bulk_runs, bulk_sending
from core.platform import clock, config

from . import render

POLL_SECONDS = 0.5
STALL_SECONDS = 30
NOBODY = {"not_invited": "every client has been invited already",
          "expired": "no client's invite has expired",
          "needs_reconnect": "no client has a connection that needs restoring",
          "list": "the list names no one"}


# --- invite-all -----------------------------------------------------------------------


@click.command("invite-all")
@click.option("--not-invited", "selection", flag_value="not_invited",
              help="Every client not yet invited (the default).")
@click.option("--expired", "selection", flag_value="expired",
              help="Every client whose invite expired.")
@click.option("--reconnect", "selection", flag_value="needs_reconnect",
              help="Every client with a bank connection that needs restoring.")
@click.option("--list", "list_file", type=click.File("rb"), metavar="FILE",
              help="Names, phones or emails one per line, or a CSV whose first column is "
                   "the name ('-' reads standard input).")
@click.option("--sms", "channel", flag_value="sms", help="Send everyone a text message.")
@click.option("--email", "channel", flag_value="email", help="Send everyone an email.")
@click.option("--yes", is_flag=True, help="Send without asking.")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Follow the run with a progress bar until it is over.")
def invite_all(selection, list_file, channel, yes, wait):
    """Invite many clients at once.

    First it shows who gets what and who is skipped.
    """
    if selection and list_file:
        raise click.UsageError("Choose one of --not-invited, --expired, --reconnect or --list")
    names = _read_list(list_file) if list_file else ""
    selection = "list" if list_file else (selection or "not_invited")
    plan = bulk_plan.prepare(current_firm(), selection, names=names, channel=channel)
    settings = config.settings()
    if not plan.sms + plan.email:
        bulk_sending.cancel(plan.run.id, actor="cli")
        click.echo("\n".join(_nobody(plan, selection)))
        return
    click.echo("\n".join(render.bulk_plan(plan, settings.sms_rate, settings.email_rate)))
    if not (yes or _confirmed(plan.run.id, list_file)):
        bulk_sending.cancel(plan.run.id, actor="cli")
        click.echo(f"Canceled run #{plan.run.id}: nothing was sent.")
        return
    _send(plan.run.id, wait)


def _nobody(plan, selection: str) -> list[str]:
    if not plan.skipped:
        return [f"Nobody to invite: {NOBODY[selection]}."]
    return [f"Nobody to invite ({bulk_plan.SELECTIONS[selection]}); nothing was sent.",
            *render.grouped("Skipped", plan.skipped)]


def _read_list(stream) -> str:
    """The first column of each line (a plain list, or a CSV with quotes)."""
    try:
        text = stream.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise click.UsageError(f"{stream.name} is not UTF-8 text") from None
    rows = csv.reader(io.StringIO(text))
    return "\n".join(row[0].strip().replace(",", " ") for row in rows if row and row[0].strip())


def _confirmed(run_id: int, list_file=None) -> bool:
    if list_file is not None and list_file.name == "<stdin>":
        click.echo("The list came on standard input, so nobody can answer here: "
                   "pass --yes to send.")
        return False
    try:
        answer = click.confirm("Send?", default=False)
        if not sys.stdin.isatty():
            click.echo()  # the answer typed in a terminal ends the line; piped, it does not
        return answer
    except click.Abort:
        bulk_sending.cancel(run_id, actor="cli")
        click.echo(f"\nCanceled run #{run_id}: nothing was sent.", err=True)
        raise


def _send(run_id: int, wait: bool) -> None:
    try:
        bulk_sending.start(run_id)
        if not wait:
            click.echo(f"Started run #{run_id}: {render.bulk_counts(bulk_runs.progress(run_id))}.")
            click.echo(f"Follow it with: ledgersync bulk status {run_id}")
            return
        progress = _watch(run_id)
    except KeyboardInterrupt:
        click.echo(f"\nStopped watching run #{run_id}. Where it stands: ledgersync bulk status "
                   f"{run_id}; to stop it: ledgersync bulk cancel {run_id}", err=True)
        sys.exit(130)
    click.echo("\n".join(render.bulk_outcome(progress, bulk_runs.failures(run_id),
                                             progress.counts["waiting"])))
    click.echo(f"Details: ledgersync bulk status {run_id}")


def _watch(run_id: int):
    """Follow the run with a progress bar until it is over, or only quiet hours are left."""
    progress = bulk_runs.progress(run_id)
    settled_before = progress.total - progress.left  # skipped when prepared: not on the bar
    last, changed = None, time.monotonic()
    with click.progressbar(length=max(progress.left, 1), label=render.bulk_counts(progress),
                           show_eta=False, hidden=not sys.stdout.isatty()) as bar:
        while True:
            label = render.bulk_counts(progress)
            if label != last:
                last, changed = label, time.monotonic()
            bar.label = label + _stall_hint(progress, time.monotonic() - changed)
            bar.update(max(0, progress.total - progress.left - settled_before - bar.pos))
            if _settled(progress):
                return progress
            time.sleep(POLL_SECONDS)
            progress = bulk_runs.progress(run_id)


def _active(progress) -> int:
    """Items still to go out now (not those waiting for quiet hours)."""
    return progress.counts["queued"] + progress.counts["sending"]


def _eta(progress) -> float:
    return progress.eta_seconds * _active(progress) / progress.left if progress.left else 0.0


def _settled(progress) -> bool:
    if progress.run.status in {"done", "canceled"}:
        return True
    return bool(progress.counts["waiting"]) and not _active(progress)


def _stall_hint(progress, idle: float) -> str:
    if idle < STALL_SECONDS:
        return f" · {render.duration(_eta(progress))} left" if _active(progress) else ""
    return f" · nothing for {int(idle)} s: is `ledgersync worker` running?"


# --- bulk status, list, cancel, retry ---------------------------------------------------


@click.group("bulk")
def bulk_group():
    """Bulk invite runs: where they stand, cancel, retry."""


@bulk_group.command("status")
@click.argument("run_id", type=int, required=False)
def bulk_status(run_id):
    """Where run RUN_ID stands (the latest run when omitted)."""
    firm = current_firm()
    if run_id is None:
        latest = bulk_runs.latest(firm)
        if latest is None:
            click.echo("No bulk runs yet; start one with `ledgersync invite-all`.")
            return
        run_id = latest.id
    run = bulk_runs.get(firm, run_id)
    click.echo("\n".join(_status_lines(bulk_runs.progress(run.id), clock.zone(firm.timezone))))


def _status_lines(progress, tz) -> list[str]:
    run = progress.run
    lines = [f"Run #{run.id} · {bulk_plan.SELECTIONS.get(run.selection, run.selection)} · "
             f"{render.BULK_STATES.get(run.status, run.status)}",
             _when(run, tz) + (f"; everyone by {run.channel.upper()}" if run.channel else ""),
             render.bulk_counts(progress)]
    if _active(progress) and run.status == "running":
        lines.append(f"Time left: {render.duration(_eta(progress))}"
                     + (" (and the texts waiting for quiet hours)" if progress.counts["waiting"]
                        else ""))
    lines += render.grouped("Failed", bulk_runs.failures(run.id))
    lines += render.grouped("Waiting", bulk_runs.failures(run.id, "waiting"))
    lines += render.grouped("Skipped", bulk_runs.failures(run.id, "skipped"))
    if progress.counts["failed"]:
        lines.append(f"To try the failed ones again: ledgersync bulk retry {run.id}")
    return lines


def _when(run, tz) -> str:
    moments = [("Started", run.started_at or run.created_at), ("finished", run.finished_at),
               ("canceled", run.canceled_at)]
    return ", ".join(f"{word} {clock.short_datetime(at, tz)}" for word, at in moments if at)


@bulk_group.command("list")
@click.option("--limit", default=10, show_default=True)
def bulk_list(limit):
    """Recent bulk runs, newest first."""
    firm = current_firm()
    runs = bulk_runs.recent(firm, limit)
    if not runs:
        click.echo("No bulk runs yet; start one with `ledgersync invite-all`.")
    tz = clock.zone(firm.timezone)
    for run in runs:
        click.echo(render.bulk_line(bulk_runs.progress(run.id), tz))


@bulk_group.command("cancel")
@click.argument("run_id", type=int)
def bulk_cancel(run_id):
    """Stop run RUN_ID: what has not gone out is not sent."""
    run = bulk_runs.get(current_firm(), run_id)
    if run.status not in {"confirming", "running"}:
        click.echo(f"Run #{run.id} is already {render.BULK_STATES.get(run.status, run.status)}"
                   "; nothing to cancel.")
        return
    stopped = bulk_sending.cancel(run.id, actor="cli")
    sent = bulk_runs.progress(run.id).counts["sent"]
    click.echo(f"Canceled run #{run.id}: {render.plural(stopped, 'invite')} not sent; "
               f"{sent} already went out.")


@bulk_group.command("retry")
@click.argument("run_id", type=int)
def bulk_retry(run_id):
    """Send the failed invites of run RUN_ID again."""
    run = bulk_runs.get(current_firm(), run_id)
    again = bulk_sending.retry_failed(run.id)
    if not again:
        click.echo(f"Run #{run.id} has no failed invites to retry.")
        return
    click.echo(f"Retrying {render.plural(again, 'failed invite')} of run #{run.id}.")
    bulk_sending.kick(run.id)
    click.echo(render.bulk_counts(bulk_runs.progress(run.id)))
    click.echo(f"Details: ledgersync bulk status {run.id}")

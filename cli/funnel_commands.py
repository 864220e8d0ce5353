"""`ledgersync funnel`: the firm's invite funnel — invited, delivered, opened, accepted,
connected — how long connecting took, and why clients stall; by staff member, channel
or bulk run; `--csv` for a spreadsheet. Counted by `core.reports.funnel`."""

from __future__ import annotations

import csv
import sys

import click

from cli.common import current_firm
from core.platform import clock
from core.reports import funnel as core_funnel

BAR = 20
COLUMNS = ("group", "invited", "delivered", "opened", "accepted", "connected",
           "connected_rate", "median_hours", "p90_hours")


@click.command("funnel")
@click.option("--since", default=core_funnel.DEFAULT_SINCE, show_default=True,
              metavar="30d|DATE", help="The last N days (7d, 30d, 90d), or from a date "
                                        "(2026-11-01, in the firm's zone).")
@click.option("--until", metavar="DATE", help="Up to this date, included (default: now).")
@click.option("--by", type=click.Choice(core_funnel.BY),
              help="A row for each staff member who sent, channel, or bulk run.")
@click.option("--csv", "as_csv", is_flag=True,
              help="Write the rows as CSV: " + ",".join(COLUMNS) + ".")
def funnel(since, until, by, as_csv):
    """The invite funnel: who got how far, and why not.

    Invited, delivered, opened, accepted, connected; time to connect; where the others
    stall, with their names. Counted per client: a resend or a reminder never counts
    anyone twice; each client is counted under their first invite of the period (its
    channel, sender and run)."""
    firm = current_firm()
    when = core_funnel.period(since, until, tz=clock.zone(firm.timezone))
    seen = core_funnel.of(firm, when, by)
    if as_csv:
        _csv(seen)
        return
    click.echo("\n".join([*_summary(firm.name, seen), *_groups(seen), *_stalls(seen)]))


def _summary(firm_name: str, seen: core_funnel.Funnel) -> list[str]:
    stages = seen.stages
    lines = [f"{firm_name} — invite funnel, {seen.period.label}: {stages.invited} client"
             f"{'s' if stages.invited != 1 else ''} invited (counted once each, however many "
             "links they were sent).", ""]
    for stage in core_funnel.STAGES:
        rate = stages.rate(stage)
        lines.append(f"  {core_funnel.STAGE_WORDS[stage]:<10}{stages.count(stage):>7}  "
                     f"{core_funnel.bar(rate, BAR):<{BAR}} {core_funnel.percent(rate):>4}")
    timing = seen.timing
    lines += ["", (f"Time to connect (from the first invite): median "
                   f"{core_funnel.took(timing.median)}, 90th percentile "
                   f"{core_funnel.took(timing.p90)} ({timing.connected} connected)."
                   if timing.connected else "Time to connect: nobody connected yet.")]
    return lines


def _groups(seen: core_funnel.Funnel) -> list[str]:
    if not seen.by:
        return []
    head = (f"{'by ' + seen.by:<32}{'invited':>8}{'deliv.':>8}{'opened':>8}{'accept.':>8}"
            f"{'conn.':>8}{'rate':>6}  {'median':>9}  {'p90':>9}")
    rows = [f"{group.label[:31]:<32}" + "".join(f"{group.stages.count(s):>8}"
                                                for s in core_funnel.STAGES)
            + f"{core_funnel.percent(group.stages.rate('connected')):>6}  "
              f"{core_funnel.took(group.timing.median):>9}  {core_funnel.took(group.timing.p90):>9}"
            for group in seen.groups]
    return ["", head, *rows]


def _stalls(seen: core_funnel.Funnel) -> list[str]:
    others = seen.stages.invited - seen.stages.connected
    if not others:
        return []
    lines = ["", f"Where the other {others} stand:"]
    for stall in seen.stalls:
        more = f" and {stall.more} more" if stall.more else ""
        names = ", ".join(n.name for n in stall.names)
        lines.append(f"  {stall.words:<30}{stall.count:>6}  {names}{more}")
        lines += [f"      {text}: {n}" for text, n in stall.details[:5]]
    if seen.waiting:
        lines.append(f"  {core_funnel.WAITING_WORDS:<30}{seen.waiting:>6}  (not stalled yet)")
    lines += ["", "Follow up from Slack (`/ledgersync funnel` has a button for each group), or "
                  "`ledgersync invite-all --expired`."]
    return lines


def _csv(seen: core_funnel.Funnel) -> None:
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(COLUMNS)
    for group in seen.groups:
        stages, timing = group.stages, group.timing
        rate = stages.rate("connected")
        out.writerow([group.label if seen.by else "all",
                      *(stages.count(s) for s in core_funnel.STAGES),
                      "" if rate is None else f"{rate:.3f}",
                      _hours(timing.median), _hours(timing.p90)])


def _hours(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds / 3600:.2f}"

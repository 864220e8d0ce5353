"""Block Kit for the funnel (`/ledgersync funnel`, the Home's section, support's view
across firms) and the firm's digest. Builders only: they render what core worked out
(`core.reports.funnel`, `core.reports.digest`) and touch no database. Stage counts are
plain bars in a code block; each stall shows its first names (then "and N more"); every
piece of user text goes through `esc()`/`clip()`; within Block Kit's limits (50 blocks,
3,000 characters a section, 2,000 a button's value)."""

from __future__ import annotations

import json

from bot.ids import ActionId
from bot.views import button, clip, context, esc, message, section
from core.invitations.bulk_plan import Plan
from core.reports import funnel
from core.reports.digest import Digest
from core.reports.funnel import Failure, Funnel, Period, Stall

from . import bulk_views

BAR = 20  # characters of a full bar
NAME = 60  # characters of a client's name in a list
FIRMS_SHOWN = 20
USAGE = ("`/ledgersync funnel [7d|30d|90d]`, or dates: `/ledgersync funnel 2026-11-01 "
         "2026-11-30`")


# --- pieces ---------------------------------------------------------------------------


def bars(stages: funnel.Stages) -> str:
    """The five stages as plain bars, each against the clients invited."""
    lines = []
    for stage in funnel.STAGES:
        rate = stages.rate(stage)
        lines.append(f"{funnel.STAGE_WORDS[stage]:<10}{stages.count(stage):>7}  "
                     f"{funnel.bar(rate, BAR):<{BAR}} {funnel.percent(rate):>4}")
    return "```\n" + "\n".join(lines) + "\n```"


def timing(seen: funnel.Timing) -> str:
    if not seen.connected:
        return "Time to connect: nobody connected yet."
    return (f"Time to connect (from the first invite): median *{funnel.took(seen.median)}*, "
            f"90th percentile *{funnel.took(seen.p90)}* ({seen.connected} connected).")


def names(shown: list[str], more: int) -> str:
    text = ", ".join(clip(name, NAME) for name in shown)
    return text + (f" and {more} more" if more else "")


def _stall_line(words: str, count: int, shown: list[str], more: int,
                details: list[tuple[str, int]]) -> str:
    why = "; ".join(f"{esc(text)}: {n}" for text, n in details[:5])
    return (f"• *{esc(words)}* — {count}" + (f" ({clip(why, 600)})" if why else "") +
            (f": {names(shown, more)}" if shown else ""))


def stall_line(stall: Stall) -> str:
    return _stall_line(stall.words, stall.count, [n.name for n in stall.names], stall.more,
                       list(stall.details))


def follow_ups(buttons: list[tuple[str, int, str]], when: Period, block_id: str) -> list:
    """The follow-up buttons, each naming its bulk selection and the period (a bulk run's
    confirmation comes first: nothing goes out from the click alone)."""
    if not buttons:
        return []
    elements = [button(words, ActionId.FUNNEL_FOLLOW_UP, follow_up_value(selection, when),
                       "primary" if n == 0 else None)
                for n, (selection, _, words) in enumerate(buttons)]
    return [{"type": "actions", "block_id": block_id, "elements": elements[:5]}]


def follow_up_value(selection: str, when: Period) -> str:
    return json.dumps({"s": selection, "from": when.start.isoformat(),
                       "to": when.end.isoformat(), "l": when.label})


# --- /ledgersync funnel ------------------------------------------------------------------


def funnel_message(seen: Funnel, firm_name: str, *, actions: bool = True) -> dict:
    stages = seen.stages
    head = (f"*{esc(firm_name)}* — invite funnel, {esc(seen.period.label)}: "
            f"*{stages.invited}* client{'s' if stages.invited != 1 else ''} invited, counted "
            "once each however many links they were sent.")
    if not stages.invited:
        return message(f"{firm_name}: nobody invited, {seen.period.label}",
                       [section(f"*{esc(firm_name)}* — nobody was invited, "
                                f"{esc(seen.period.label)}."), context(USAGE)])
    blocks = [section(head), section(bars(stages)), section(timing(seen.timing)),
              *_where(seen)]
    if actions:
        blocks += follow_ups([(f.selection, f.count, f.words) for f in seen.follow_ups],
                             seen.period, "funnel-follow-ups")
    blocks.append(context(f"{USAGE} · by staff, channel or bulk run: `ledgersync funnel "
                          "--by staff`"))
    return message(f"{firm_name}: {stages.invited} invited, {stages.connected} connected, "
                   f"{seen.period.label}", blocks)


def _where(seen: Funnel) -> list:
    others = seen.stages.invited - seen.stages.connected
    if not others:
        return [section("Everyone invited has connected a bank. :tada:")]
    lines = [stall_line(s) for s in seen.stalls]
    if seen.waiting:
        lines.append(f"• *{funnel.WAITING_WORDS}* — {seen.waiting} (not stalled yet)")
    return [section(f"*Where the other {others} stand*"),
            *(section(line) for line in lines)]


# --- a follow-up: the bulk run's confirmation ------------------------------------------------

FOLLOW_UP_WORDS = {"opened_not_accepted": "the clients who opened their link but didn't "
                                          "accept",
                   "expired": "the clients whose link expired unopened",
                   "needs_reconnect": "every client with a bank connection to restore"}


def follow_up_confirm(plan: Plan, sms_rate: float, selection: str, label: str) -> dict:
    """The bulk run's own confirmation (how many, by which channel, who is skipped and
    why), headed with where it came from."""
    confirm = bulk_views.confirm(plan, sms_rate)
    reconnect = selection == "needs_reconnect"
    period = "" if reconnect else f", {esc(label)}"
    what = "a link to restore their bank" if reconnect else "a new link"
    origin = context(f"From the funnel{period}: {FOLLOW_UP_WORDS[selection]}. Each gets "
                     f"{what}, paced, outside quiet hours; anyone opted out is skipped.")
    return {**confirm, "blocks": [origin, *confirm["blocks"]][:50]}


# --- the Home's section --------------------------------------------------------------------


def home_section(seen: Funnel) -> list:
    stages = seen.stages
    title = f"*Funnel, {esc(seen.period.label)}*"
    if not stages.invited:
        return [section(f"{title} — nobody invited yet.")]
    top = [stall_line(Stall(s.reason, s.count, s.details, s.names[:3])) for s in
           seen.stalls[:3]]
    blocks = [section(f"{title} — {stages.invited} invited, {stages.connected} connected "
                      f"({funnel.percent(stages.rate('connected'))})"),
              section(bars(stages))]
    if top:
        blocks.append(section("*Top stall reasons*\n" + "\n".join(top)))
    blocks += follow_ups([(f.selection, f.count, f.words) for f in seen.follow_ups],
                         seen.period, "home-funnel")
    blocks.append(context("Every name and time to connect: `/ledgersync funnel`"))
    return blocks


# --- the digest ------------------------------------------------------------------------------


def digest_blocks(seen: Digest) -> list:
    blocks = [section(f":bar_chart: *{esc(seen.title)}* — {esc(seen.label)}"),
              section(f"*{seen.invited}* client{'s' if seen.invited != 1 else ''} invited "
                      f"({seen.links} link{'s' if seen.links != 1 else ''} sent) · "
                      f"*{seen.connected}* bank{'s' if seen.connected != 1 else ''} connected "
                      "or restored")]
    blocks += _outstanding(seen)
    if seen.broken_total:
        blocks.append(section(f"*Bank connections to restore* ({seen.broken_total}): "
                              f"{names(seen.broken, seen.broken_total - len(seen.broken))}"))
    if seen.failures:
        blocks.append(section("*Not delivered*\n" + "\n".join(
            f"• {clip(reason, 200)} — {n}" for reason, n in seen.failures[:10])))
    blocks += follow_ups(seen.follow_ups, seen.period, "digest-follow-ups")
    blocks.append(context("Every name and time to connect: `/ledgersync funnel` · admins "
                          "choose the digest: `/ledgersync firm set digest monday|daily|off`"))
    return blocks[:50]


def _outstanding(seen: Digest) -> list:
    if not seen.outstanding:
        return [section(f"*Outstanding*: nobody invited in the last "
                        f"{seen.period.days} days is stuck.")]
    lines = [_stall_line(g.words, g.count, g.names, g.more, g.details)
             for g in seen.outstanding]
    still = f" {seen.waiting} more have a link still open." if seen.waiting else ""
    return [section(f"*Outstanding* — invited in the last {seen.period.days} days, not "
                    f"connected yet.{still}"), *(section(line) for line in lines)]


# --- LedgerSync support ----------------------------------------------------------------------


def support_all(seen: Funnel, failures: list[Failure]) -> dict:
    rows = [_firm_line(group) for group in seen.groups[:FIRMS_SHOWN]]
    more = len(seen.groups) - FIRMS_SHOWN
    head = (f"*Every firm's funnel, {esc(seen.period.label)}*: {seen.stages.invited} invited, "
            f"{seen.stages.connected} connected "
            f"({funnel.percent(seen.stages.rate('connected'))}).")
    blocks = [section(head), *(section("\n".join(rows[start:start + 10]))
                               for start in range(0, len(rows), 10))]
    if more > 0:
        blocks.append(context(f"and {more} more firms"))
    blocks += [failures_section(failures),
               context('One firm, with names: `/ledgersync support funnel firm:"Smith & Co"`')]
    return message(f"Every firm's funnel, {seen.period.label}", blocks)


def _firm_line(group: funnel.Group) -> str:
    stalls = {k: v for k, v in group.stalls.items() if k in funnel.STALLS}
    worst = max(stalls.items(), key=lambda kv: kv[1], default=None)
    most = f" · most stalled: {funnel.STALLS[worst[0]].lower()} ({worst[1]})" if worst else ""
    return (f"• *{clip(group.label, 100)}* — {group.stages.invited} invited · "
            f"{funnel.percent(group.stages.rate('connected'))} connected{most}")


def support_firm(seen: Funnel, firm_name: str, failures: list[Failure]) -> dict:
    shown = funnel_message(seen, firm_name, actions=False)
    return {**shown, "blocks": [*shown["blocks"][:48], failures_section(failures)]}


def failures_section(failures: list[Failure]) -> dict:
    if not failures:
        return section("*Delivery failures, last 24 h*: none.")
    lines = [f"• {clip(f.reason, 150)} — {f.count}"
             + (f" ({f.firms} firms)" if f.firms > 1 else "") for f in failures[:15]]
    return section("*Delivery failures, last 24 h, by reason*\n" + "\n".join(lines))

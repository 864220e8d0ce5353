"""`/ledgersync funnel [30d]` (a firm's funnel: who stalled where, with the buttons that
move them), `/ledgersync support funnel` (LedgerSync support, across firms), and what a
follow-up button of the funnel, the digest or the Home answers: parse, check, call core
(`core.reports.funnel`), pick a view (`funnel_views`). The button's listener:
`funnel_buttons`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.ids import STALE
from core.firms import access, firms
from core.firms.access import Actor
from core.platform import clock
from core.platform.config import settings
from core.platform.errors import InvalidInput, Refused
from core.reports import funnel as core_funnel

from . import funnel_views, parse

SUPPORT_USAGE = ('`/ledgersync support funnel [30d]` (every firm), or '
                 '`/ledgersync support funnel firm:"Smith & Co" [30d]`')
FAILURES_SINCE = timedelta(hours=24)


def _period(words: list[str], zone) -> core_funnel.Period:
    if len(words) > 2:
        raise InvalidInput(f"Which period? {funnel_views.USAGE}")
    since, until = (words + [None, None])[:2]
    return core_funnel.period(since, until, tz=zone)


def funnel(command: parse.Command, actor: Actor, meta: dict) -> dict:
    actor.require("status")
    firm = actor.firm_for(command.firm)
    when = _period(command.words, clock.zone(firm.timezone))
    access.looked_up(actor, firm, f"funnel {command.target}".strip())
    return funnel_views.funnel_message(core_funnel.of(firm, when), firm.name,
                                       actions=actor.may("invite"))


def support(command: parse.Command, actor: Actor, meta: dict) -> dict:
    words = list(command.words)
    if not words or words[0].lower() != "funnel":
        raise InvalidInput(SUPPORT_USAGE)
    if actor.kind != "support":
        actor.require("status")
        raise Refused("Only LedgerSync support sees every firm's funnel; your firm's: "
                      "`/ledgersync funnel`")
    now = clock.now()
    if command.firm:
        firm = firms.find(command.firm)
        when = _period(words[1:], clock.zone(firm.timezone))
        access.looked_up(actor, firm, f"support funnel {' '.join(words[1:])}".strip())
        failures = core_funnel.failures_by_reason(firm, now - FAILURES_SINCE, now)
        return funnel_views.support_firm(core_funnel.of(firm, when), firm.name, failures)
    when = _period(words[1:], UTC)
    access.looked_up(actor, None, "support funnel (every firm)")
    failures = core_funnel.failures_by_reason(None, now - FAILURES_SINCE, now)
    return funnel_views.support_all(core_funnel.across_firms(when), failures)


# --- the follow-up buttons ---------------------------------------------------------------


def follow_up(value: dict, actor: Actor) -> dict:
    """A follow-up button: the bulk run it would start, prepared, for staff to confirm
    (the same checks as `invite-all`: firm and role, again, on every click)."""
    actor.require("invite")
    firm = actor.firm_for(None)
    selection = str(value.get("s") or "")
    try:
        when = core_funnel.Period(_instant(value.get("from")), _instant(value.get("to")),
                                  str(value.get("l") or "")[:40])
    except (TypeError, ValueError):
        raise InvalidInput(STALE) from None
    plan = core_funnel.follow_up(firm, selection, when, by=actor.staff)
    return funnel_views.follow_up_confirm(plan, settings().sms_rate, selection, when.label)


def _instant(text) -> datetime:
    return clock.as_utc(datetime.fromisoformat(str(text)))

"""The troubleshooting list of the "Connect your LedgerSync account" article, run
for a firm and answered point by point: ✅, or ❌ with the fix."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from core.firms import workspaces
from core.firms.access import ACTIVE_SUBSCRIPTIONS
from core.messaging import notices
from core.platform import clock, config
from core.records import BankConnection, Client, Firm, Message, Staff


@dataclass(frozen=True)
class Check:
    ok: bool
    text: str
    fix: str = ""
    channel: str | None = None  # a Slack channel the text ends with (shown as its name)


def run(firm: Firm) -> list[Check]:
    return [check(firm) for check in CHECKS]


def _subscription(firm: Firm) -> Check:
    if firm.subscription_status in ACTIVE_SUBSCRIPTIONS:
        return Check(True, "Subscription is active")
    return Check(False, f"Subscription is {firm.subscription_status.replace('_', ' ')}",
                 "Renew it in LedgerSync (Settings → Billing).")


def _not_suspended(firm: Firm) -> Check:
    if not firm.suspended:
        return Check(True, "Account is not suspended")
    return Check(False, "Account is suspended", "Contact support@ledgersync.com.")


def _connected(firm: Firm) -> Check:
    removed = _removed(firm)
    if removed is not None:
        return removed
    linked = Staff.select().where(Staff.firm == firm, Staff.slack_linked_at.is_null(False))
    if firm.slack_team_id and linked.exists():
        return Check(True, f"Slack is connected ({linked.count()} staff linked)")
    return Check(False, "Nobody has connected Slack to LedgerSync",
                 "Run /ledgersync connect and sign in with your LedgerSync email and password.")


def _removed(firm: Firm) -> Check | None:
    """Installed by OAuth, then removed from the workspace (or its token revoked):
    nothing reaches Slack until an admin installs it again."""
    if config.settings().slack_mode != "oauth" or not firm.slack_team_id:
        return None
    if workspaces.installed(firm.slack_team_id):
        return None
    event = workspaces.last_removed(firm)
    when = f" on {clock.short_date(event.at, clock.zone(firm.timezone))}" if event else ""
    why = "its access was revoked" if event and event.detail.get("why") == "tokens_revoked" \
        else "it was removed"
    return Check(False, f"LedgerSync is not installed in your Slack workspace ({why}{when}): "
                 "no notices or answers reach Slack",
                 f"An admin of the workspace installs it again: "
                 f"{config.settings().public_base_url}/slack/install")


def _clients(firm: Firm) -> Check:
    count = Client.select().where(Client.firm == firm).count()
    if count:
        return Check(True, f"{count} client{'s' if count != 1 else ''} set up")
    return Check(False, "No clients set up yet",
                 "Add one with /ledgersync client add, or paste a CSV with /ledgersync import.")


def _banks(firm: Firm) -> Check:
    with_banks = (Client.select().join(BankConnection)
                  .where(Client.firm == firm, BankConnection.status == "active")
                  .distinct().count())
    if with_banks:
        return Check(True, f"{with_banks} client{'s' if with_banks != 1 else ''} "
                           "with a working bank connection")
    return Check(False, "No client has a bank connected yet",
                 "Invite your clients: /ledgersync invite <client>.")


def notices_channel(firm: Firm) -> Check:
    if firm.notify_channel:
        return Check(True, "Notices channel:", channel=firm.notify_channel)
    fix = "Choose one: /ledgersync notify #channel"
    if notices.linked_admins(firm):
        return Check(False, "No channel chosen: notices go to admins by direct message", fix)
    return Check(False, "No channel chosen and no admin connected to Slack: firm notices "
                        "are being lost", fix)


def _deliveries(firm: Firm) -> Check:
    since = clock.now() - timedelta(days=7)
    failed = Message.select().where(Message.firm == firm, Message.direction == "out",
                                    Message.status.in_(["failed", "undelivered"]),
                                    Message.created_at >= since).count()
    if not failed:
        return Check(True, "No failed texts or emails this week")
    return Check(False, f"{failed} text{'s' if failed != 1 else ''} or emails failed this week",
                 "Look at /ledgersync pending and each client's status for the reason.")


CHECKS = [_subscription, _not_suspended, _connected, _clients, _banks, notices_channel,
          _deliveries]

"""Plain-text rendering of core results for the terminal."""

from __future__ import annotations

import math
import shlex
from collections.abc import Iterable

from core.invitations.invites import Sent
from core.messaging import outbox
from core.messaging.quiet_hours import zone_for
from core.platform import clock, phones
from core.records import Client, Message, Status
from core.reports.status import DELIVERY_WORDS, ClientStatus, humanise, local_text


def who(client: Client) -> str:
    parts = [client.name]
    if client.phone:
        parts.append(phones.display(client.phone))
    if client.email:
        parts.append(client.email)
    return " · ".join(parts)


def client_row(client: Client) -> str:
    banks = f"  banks: {', '.join(client.banks)}" if client.banks else ""
    return f"{client.id:>5}  {who(client)}{banks}"


def sent(result: Sent, verb: str) -> str:
    invite, message = result.invite, result.message
    tz = zone_for(invite.client)
    how = "by SMS" if invite.channel == "sms" else "by email"
    to = phones.display(message.to_addr) if invite.channel == "sms" else message.to_addr
    state = DELIVERY_WORDS.get(message.status, message.status)
    if message.status == Status.PENDING:
        state = "queued to send"
    return (f"{verb} {invite.client.name} {how} at {to}: {state}. "
            f"The link works until {local_text(invite.expires_at, tz)}.")


# Where the client stands, and the next step as the command to run.
STATE_LINES = {
    "not_invited": "Not invited yet. Next: ledgersync invite {name}",
    "pending": "Invited, not accepted yet — link works until {at} ({left}). "
               "Remind if they haven't seen it: ledgersync remind {name}",
    "expired": "Link expired {at}. Next: ledgersync resend {name}",
    "revoked": "Link revoked {at}. If they should still connect: ledgersync resend {name}",
    "superseded": "Link replaced {at}. For a working one: ledgersync resend {name}",
    "accepted": "Accepted {at} — no bank connected yet. If they need to sign in again: "
                "ledgersync resend {name}",
    "connected": "Connected: {banks}",
    "needs_restoring": "Needs restoring: {banks}. Ask them to reconnect: "
                       "ledgersync invite {name} --reconnect",
    "restoring_asked": "Needs restoring: {banks} — asked to reconnect, link works until {at} "
                       "({left}). Remind if they haven't seen it: ledgersync remind {name}",
    "opted_out": "Opted out of texts — nothing is sent until they text START. Call them to ask.",
    "disowned": "Someone who opened the link sent to {to} said it isn't them ({at}): {to} must "
                "be checked with the client before anything is sent. Correct it if it's wrong; "
                "if it's right: ledgersync resend {name} --force",
}

CONNECTION_WORDS = {"active": "working", "needs_reconnect": "needs restoring"}


def status(info: ClientStatus) -> str:
    """The status card as text; every time in the client's zone, labelled with it."""
    lines = [who(info.client), state_line(info)]
    if info.opted_out and info.situation.key != "opted_out":
        lines.append("Opted out of texts: nothing is sent until they text START.")
    if info.timeline:
        lines.append("Timeline:")
    for line in info.timeline:
        lines.append(f"  {local_text(line.at, info.zone):<28} {line.text}")
    if info.connections:
        lines.append("Bank connections:")
        for c in info.connections:
            why = f" ({c.last_error})" if c.status == "needs_reconnect" and c.last_error else ""
            lines.append(f"  {c.institution_name}: {CONNECTION_WORDS.get(c.status, c.status)}{why}")
    else:
        lines.append("Bank connections: none yet")
    return "\n".join(lines)


def state_line(info: ClientStatus) -> str:
    where = info.situation
    words = STATE_LINES.get(where.key)
    if words is None:
        return humanise(where.key)
    return words.format(at=local_text(where.at, info.zone) if where.at else "",
                        left=where.left, banks=where.bank_names, to=where.to,
                        name=shlex.quote(info.client.name))


def message_zone(m: Message):
    """The recipient client's zone when known, else the firm's, else UTC."""
    if m.client_id is not None:
        client = Client.get_or_none(Client.id == m.client_id)
        if client is not None:
            return zone_for(client)
    firm = m.firm if m.firm_id is not None else None
    return clock.zone(firm.timezone if firm else None)


def message(m: Message) -> str:
    """One outbox message; its time in the recipient's zone, labelled ('… 10:24 AM EST')."""
    when = f"{local_text(m.created_at, message_zone(m))} ({m.created_at:%H:%M} UTC)"
    head = f"#{m.id} {when}  {m.channel.upper()} to {m.to_addr}  [{m.kind}, {m.status}]"
    if m.channel == "sms":
        head += f"  {m.segments} segment{'s' if m.segments != 1 else ''}"
    subject = f"\nSubject: {m.subject}" if m.subject else ""
    return f"{head}{subject}\n{outbox.text(m)}\n"


# --- bulk runs ----------------------------------------------------------------------

BULK_STATES = {"confirming": "waiting for confirmation", "running": "running",
               "canceled": "canceled", "done": "done"}
NAMES_PER_REASON = 10


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def duration(seconds: float) -> str:
    """A human estimate: 'about 40 s', 'about 7 min', 'about 2 h 5 min'."""
    seconds = math.ceil(max(0.0, seconds))
    if seconds == 0:
        return "under a second"
    if seconds < 60:
        return f"about {seconds if seconds < 10 else min(55, 5 * round(seconds / 5))} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"about {hours} h" + (f" {minutes} min" if minutes else "")


def rate(value: float) -> str:
    return f"{value:g}/s"


def grouped(title: str, items: Iterable) -> list[str]:
    """'Skipped 3:' then one line per reason, most common first, at most ten names each."""
    groups: dict[str, list[str]] = {}
    for item in items:
        groups.setdefault(item.reason or "no reason given", []).append(item.label)
    if not groups:
        return []
    lines = [f"{title} {sum(len(labels) for labels in groups.values())}:"]
    for reason, labels in sorted(groups.items(), key=lambda pair: -len(pair[1])):
        shown = ", ".join(labels[:NAMES_PER_REASON])
        more = len(labels) - NAMES_PER_REASON
        lines.append(f"  {reason} ({len(labels)}): {shown}" + (f" and {more} more" if more > 0
                                                                   else ""))
    return lines


def bulk_counts(progress) -> str:
    """'Sent 120 of 400 · 3 failed · 12 skipped' (+ waiting and canceled when any)."""
    counts = progress.counts
    parts = [f"Sent {counts['sent']} of {progress.total}", f"{counts['failed']} failed",
             f"{counts['skipped']} skipped"]
    if counts["waiting"]:
        parts.append(f"{counts['waiting']} waiting for quiet hours")
    if counts["canceled"]:
        parts.append(f"{counts['canceled']} canceled")
    return " · ".join(parts)


def bulk_plan(plan, sms_rate: float, email_rate: float) -> list[str]:
    """What a bulk run is about to do, before anything goes out."""
    rates = ([f"SMS_RATE {rate(sms_rate)}"] if plan.sms else []) + (
        [f"EMAIL_RATE {rate(email_rate)}"] if plan.email else [])
    lines = [f"About to invite {plural(plan.sms + plan.email, 'client')}: {plan.sms} by SMS, "
             f"{plan.email} by email. Takes {duration(plan.eta_seconds)} at the sender's rate "
             f"({', '.join(rates)})."]
    return lines + grouped("Skipped", plan.skipped)


def bulk_outcome(progress, failed: list, waiting: int) -> list[str]:
    """The summary once a run is over (or only quiet-hours texts are left)."""
    counts, run = progress.counts, progress.run
    to_send = progress.total - counts["skipped"]
    if run.status == "canceled":
        head = f" canceled: {counts['sent']} of {plural(to_send, 'invite')} sent"
    elif to_send and counts["sent"] == to_send:
        head = f": all {to_send} invites sent" if to_send > 1 else ": the invite was sent"
    else:
        head = (" so far" if run.status == "running" else "") + (
            f": {counts['sent']} of {plural(to_send, 'invite')} sent")
    extras = [f"{counts['failed']} failed"] if counts["failed"] else []
    extras += [f"{counts['skipped']} skipped"] if counts["skipped"] else []
    lines = [f"Run #{run.id}{head}" + (f", {', '.join(extras)}" if extras else "") + "."]
    lines += grouped("Failed", failed)
    if waiting:
        verbs = ("waits", "goes") if waiting == 1 else ("wait", "go")
        lines.append(f"{plural(waiting, 'text')} {verbs[0]} for quiet hours and {verbs[1]} out "
                     "in the client's morning.")
    if counts["failed"]:
        lines.append(f"To try the failed ones again: ledgersync bulk retry {run.id}")
    return lines


def bulk_line(progress, tz) -> str:
    run = progress.run
    return (f"#{run.id:<5} {clock.short_datetime(run.created_at, tz):<24} "
            f"{BULK_STATES.get(run.status, run.status):<10} {run.selection.replace('_', ' '):<16}"
            f"{bulk_counts(progress)}")


GUIDE = """
LedgerSync Connect is running on its embedded defaults.
  database: {db}
  messages: kept in the local outbox (no Twilio or SMTP set up)

Try an invite end to end, in another terminal:
  . .venv/bin/activate
  ledgersync clients list
  ledgersync invite "Maria Gonzalez"     # by SMS, to her phone
  ledgersync outbox                      # the text she got, with her link
  ledgersync status maria                # the timeline so far
  ledgersync resend maria --email        # a new link by email; the old one stops working
  ledgersync remind maria                # the same link again (once a day)
  ledgersync pending                     # open invites, soonest expiry first
Bank data (Acme Co connected Bank of America through the sandbox):
  ledgersync accounts acme               # its accounts and their balances
  ledgersync transactions acme --limit 10   # newest first; --csv for a spreadsheet
The outbox is also a page: {base}/outbox
"""


# --- what fixes a problem, as this command line says it ---------------------------------

FIX_OPTION = {"phone": "--phone NUMBER", "email": "--email ADDRESS"}


def fixes(problem) -> list[str]:
    """The commands that put `problem` right (its `fixes`), one a line."""
    return [line for line in (_fix(fix) for fix in getattr(problem, "fixes", ())) if line]


def _fix(fix) -> str:
    name = shlex.quote(fix.client)
    if fix.action == "edit_client":
        option = FIX_OPTION.get(fix.detail, "[--name …] [--phone …] [--email …]")
        return f"ledgersync clients update {name} {option}"
    if fix.action == "invite_by":
        return f"ledgersync resend {name} --{fix.detail}"
    if fix.action == "resend_force":
        return f"ledgersync resend {name} --force"
    return ""

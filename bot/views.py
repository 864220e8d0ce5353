"""Block Kit builders. Handlers never build blocks themselves; builders never
touch the database beyond the objects they are handed. Every piece of user text
goes through `esc()` (so a client named `<!channel>` pings nobody)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from core import clock, phones
from core.doctor import Check
from core.models import Client, Invite
from core.quiet_hours import zone_for
from core.status import ClientStatus

from .ids import ActionId, BlockId, CallbackId

PAGE = 40  # rows per message: well inside Block Kit's 50 blocks


@dataclass(frozen=True)
class OpenModal:
    """A command's reply that is a modal to open (within 3 s of the click) rather
    than a message."""

    view: dict


MAX_SECTION = 2900

HELP = [
    ("connect", "link your Slack user to your LedgerSync account"),
    ("clients [filter]", "list clients: `/ledgersync clients smith`"),
    ("client add", "add a client (a form opens)"),
    ("import", "paste a CSV of clients: name, email, phone, banks"),
    ("invite <client> [sms|email] [reconnect]", "`/ledgersync invite \"Acme Co\" sms`"),
    ("invite-all [not-invited|expired|reconnect|list] [sms|email]",
     "many clients at once, after a confirmation: `/ledgersync invite-all expired`"),
    ("bulk [run]", "the progress of a bulk invite"),
    ("resend <client>", "a new link; the old one stops working"),
    ("remind <client> [force]", "the same link again, once a day"),
    ("revoke <client>", "the link stops working"),
    ("status <client | phone | email>", "`/ledgersync status (415) 555-2671`"),
    ("pending", "open invites, soonest expiry first"),
    ("notify #channel", "where firm notices go (admins; until then, to admins by DM)"),
    ("doctor", "check the firm's LedgerSync set-up"),
    ("staff", "who works at the firm: role and Slack user"),
    ("staff add @colleague <email> [admin|staff]",
     "add a colleague from this workspace, connected at once (admins)"),
    ("staff remove <email>", "remove a colleague's account (admins)"),
    ("staff role <email> admin|staff", "change a colleague's role (admins)"),
    ("disconnect", "unlink your Slack user"),
]


def esc(text) -> str:
    return str(text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:MAX_SECTION]}}


def context(text: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:MAX_SECTION]}]}


def button(text: str, action: ActionId, value, style: str | None = None) -> dict:
    element = {"type": "button", "text": {"type": "plain_text", "text": text[:75]},
               "action_id": str(action), "value": str(value)[:2000]}
    if style:
        element["style"] = style
    return element


def message(text: str, blocks: list | None = None) -> dict:
    return {"text": esc(text)[:3000], "blocks": (blocks or [section(esc(text))])[:50]}


def error(text: str) -> dict:
    return message(text, [section(f":x: {esc(text)}")])


def help_message(unknown: str | None = None) -> dict:
    lines = [f"• `/ledgersync {cmd}` — {what}" for cmd, what in HELP]
    head = f"Unknown command `{esc(unknown)}`. " if unknown else ""
    return message(head + "LedgerSync commands", [
        section(f"{head}*LedgerSync Connect* — invite clients to connect their banks."),
        section("\n".join(lines)),
        context("Support: add `firm:\"Firm name\"` to status, pending, doctor and staff."),
    ])


def who(client: Client) -> str:
    parts = [f"*{esc(client.name)}*"]
    if client.phone:
        parts.append(esc(phones.display(client.phone)))
    if client.email:
        parts.append(esc(client.email))
    return " · ".join(parts)


def clients_list(rows: list[Client], total: int, offset: int, query: str) -> dict:
    lines = [f"{who(c)}" + (f" — banks: {esc(', '.join(c.banks))}" if c.banks else "")
             for c in rows]
    blocks = [section(f"*{total} client{'s' if total != 1 else ''}*"
                      + (f" matching “{esc(query)}”" if query else ""))]
    for start in range(0, len(lines), 10):
        blocks.append(section("\n".join(lines[start:start + 10])))
    if offset + len(rows) < total:
        value = json.dumps({"cmd": "clients", "q": query[:200], "offset": offset + len(rows)})
        blocks.append({"type": "actions", "elements": [button("Show more", ActionId.MORE, value)]})
    return message(f"{total} clients", blocks)


def candidates(text: str, rows: list[Client], command: str, extra: dict) -> dict:
    blocks = [section(f":mag: {esc(text)}")]
    for client in rows[:20]:
        value = json.dumps({"cmd": command, "client": client.id, **extra})
        blocks.append({**section(who(client)), "accessory": button("Pick", ActionId.PICK, value)})
    return message(text, blocks)


def sent(verb: str, client: Client, invite: Invite, to: str) -> dict:
    how = "SMS" if invite.channel == "sms" else "email"
    shown = phones.display(to) if invite.channel == "sms" else to
    expires = clock.short_date(invite.expires_at, zone_for(client))
    return message(f"{verb} {client.name}", [
        section(f":white_check_mark: {verb} *{esc(client.name)}* by {how} at {esc(shown)}. "
                f"The link expires {expires}."),
    ])


STATE_WORDS = {"pending": ":hourglass_flowing_sand: Invited, not accepted yet",
               "accepted": ":white_check_mark: Accepted", "expired": ":x: Link expired",
               "revoked": ":no_entry: Invite revoked", "superseded": "Replaced by a newer link",
               "not invited": "Not invited yet"}


def status_card(info: ClientStatus, read_only: bool = False) -> dict:
    client, tz = info.client, zone_for(info.client)
    state = STATE_WORDS.get(info.state, info.state)
    if info.state == "pending":
        state += f" (link expires {info.link_expires})"
    blocks = [section(f"{who(client)}\n{state}")]
    if info.opted_out:
        blocks.append(section(":no_bell: Opted out of messages: nothing is sent until they "
                              "reply START."))
    timeline = [f"`{clock.short_datetime(line.at, tz)}` {esc(line.text)}"
                for line in info.timeline[-12:]]
    if timeline:
        blocks.append(section("*Timeline*\n" + "\n".join(timeline)))
    blocks.append(section(_connections(info)))
    if not read_only:
        blocks.append({"type": "actions", "block_id": f"card-{client.id}",
                       "elements": _card_buttons(info)})
    return message(f"Status of {client.name}", blocks)


def _connections(info: ClientStatus) -> str:
    if not info.connections:
        return "*Bank connections:* none yet"
    icons = {"active": ":large_green_circle:", "needs_reconnect": ":red_circle: needs restoring",
             "disconnected": ":white_circle: disconnected"}
    return "*Bank connections*\n" + "\n".join(
        f"{icons.get(c.status, c.status)} {esc(c.institution_name)}" for c in info.connections)


def _card_buttons(info: ClientStatus) -> list:
    cid = info.client.id
    buttons = [button("Resend", ActionId.RESEND, cid, "primary")]
    if info.state == "pending":
        buttons += [button("Remind", ActionId.REMIND, cid), button("Revoke", ActionId.REVOKE, cid,
                                                                   "danger")]
    if info.state == "accepted" or any(c.status == "needs_reconnect" for c in info.connections):
        buttons.append(button("Ask to reconnect", ActionId.RECONNECT, cid))
    return buttons


def pending_list(rows: list[Invite], now, offset: int, total: int) -> dict:
    lines = []
    for invite in rows:
        tz = zone_for(invite.client)
        days = (invite.expires_at - now).days
        left = f"{days} day{'s' if days != 1 else ''} left" if days else "expires today"
        how = "SMS" if invite.channel == "sms" else "email"
        lines.append(f"*{esc(invite.client.name)}* — {how}, expires "
                     f"{clock.short_date(invite.expires_at, tz)} ({left})")
    blocks = [section(f"*{total} open invite{'s' if total != 1 else ''}*, soonest expiry first")]
    for start in range(0, len(lines), 10):
        blocks.append(section("\n".join(lines[start:start + 10])))
    if offset + len(rows) < total:
        value = json.dumps({"cmd": "pending", "offset": offset + len(rows)})
        blocks.append({"type": "actions", "elements": [button("Show more", ActionId.MORE, value)]})
    return message(f"{total} open invites", blocks)


def doctor(firm_name: str, checks: list[Check]) -> dict:
    lines = [f":white_check_mark: {_check_text(c)}" if c.ok else
             f":x: {_check_text(c)} — {esc(c.fix)}" for c in checks]
    ok = all(c.ok for c in checks)
    head = "Everything looks right" if ok else f"{sum(not c.ok for c in checks)} thing(s) to fix"
    return message(f"Doctor: {head}", [section(f"*{esc(firm_name)}* — {head}"),
                                        section("\n".join(lines))])


def _check_text(check: Check) -> str:
    return esc(check.text) + (f" {channel(check.channel)}" if check.channel else "")


def channel(channel_id: str | None, name: str | None = None) -> str:
    """A channel in mrkdwn: a mention (Slack shows its name) when its id is known."""
    if channel_id and re.fullmatch(r"[A-Z0-9]+", channel_id):
        return f"<#{channel_id}>"
    return f"#{esc(name or channel_id or 'that channel')}"


NOTIFY_HOW = ("pick the channel from Slack's list as you type `#` (Slack then sends its id), "
              "or paste its link (click the channel's name → Copy link).")
NOTIFY_REFUSED = {
    "not_in_channel": "Invite @LedgerSync to {where} first: `/invite @LedgerSync`, "
                      "then run this again.",
    "channel_not_found": "I can't see {where}. If it is private, invite me there first "
                         "(`/invite @LedgerSync`), then run this again.",
    "is_archived": "{where} is archived: choose another channel.",
    "not_found": "I can't find a channel named {where}. If it is private, invite me there "
                 "first (`/invite @LedgerSync`); or " + NOTIFY_HOW,
    "missing_scope": "I can't look channels up by name: " + NOTIFY_HOW,
}


def notify_set(channel_id: str) -> dict:
    return message("Notices channel set", [section(
        f":white_check_mark: Firm notices now go to {channel(channel_id)}: "
        "I posted a note there to check.")])


def notify_refused(code: str, channel_id: str | None, name: str | None) -> dict:
    """Why the channel can't take notices (so it was not chosen), and what to do."""
    where = channel(channel_id, name)
    text = (NOTIFY_REFUSED[code].format(where=where) if code in NOTIFY_REFUSED else
            f"Slack refused my test post in {where} ({esc(code)}).")
    return message("Notices channel not changed", [section(
        f":x: {text}\nThe notices channel was not changed.")])


STAFF_LINES = 100


def staff_list(firm_name: str, rows: list) -> dict:
    """A firm's people: email, role, name, and their Slack user when connected."""
    lines = []
    for staff in rows[:STAFF_LINES]:
        user = staff.slack_user_id or ""
        slack = (f"<@{user}>" if user.isalnum() else esc(user)) if staff.slack_linked_at \
            else "not connected in Slack"
        name = f" · {esc(staff.name)}" if staff.name else ""
        lines.append(f"*{esc(staff.email)}* — {staff.role}{name} · {slack}")
    blocks = [section(f"*{esc(firm_name)}*: {len(rows)} "
                      f"{'person' if len(rows) == 1 else 'people'}")]
    for start in range(0, len(lines), 10):
        blocks.append(section("\n".join(lines[start:start + 10])))
    if len(rows) > STAFF_LINES:
        blocks.append(context(f"…and {len(rows) - STAFF_LINES} more: `ledgersync staff list`"))
    return message(f"{len(rows)} at {firm_name}", blocks)


# --- modals ---------------------------------------------------------------------------


def _input(block_id: BlockId, label: str, *, multiline=False, optional=False, initial="",
           placeholder="") -> dict:
    element = {"type": "plain_text_input", "action_id": "value", "multiline": multiline}
    if initial:
        element["initial_value"] = initial[:3000]
    if placeholder:
        element["placeholder"] = {"type": "plain_text", "text": placeholder[:150]}
    return {"type": "input", "block_id": str(block_id), "optional": optional,
            "label": {"type": "plain_text", "text": label}, "element": element}


def modal(callback: CallbackId, title: str, blocks: list, submit: str = "Submit",
          metadata: str = "") -> dict:
    view = {"type": "modal", "callback_id": str(callback),
            "title": {"type": "plain_text", "text": title[:24]},
            "close": {"type": "plain_text", "text": "Close"}, "blocks": blocks[:100],
            "private_metadata": metadata[:3000]}
    if submit:
        view["submit"] = {"type": "plain_text", "text": submit}
    return view


def connect_modal() -> dict:
    email = _input(BlockId.EMAIL, "LedgerSync email", placeholder="you@yourfirm.com")
    email["element"] = {"type": "email_text_input", "action_id": "value"}
    password = _input(BlockId.PASSWORD, "LedgerSync password")
    return modal(CallbackId.CONNECT, "Connect LedgerSync", [
        section("Sign in with the email and password you use at app.ledgersync.com."),
        email, password,
        context("Your password is checked once and never stored or shown in Slack."),
    ], submit="Connect")


def connect_result(ok: bool, headline: str, detail: str, fix: str = "") -> dict:
    icon = ":white_check_mark:" if ok else ":x:"
    blocks = [section(f"{icon} *{esc(headline)}*\n{esc(detail)}")]
    if fix:
        blocks.append(section(f"*How to fix it:* {esc(fix)}"))
    return modal(CallbackId.CONNECT, "Connect LedgerSync", blocks, submit="")


def client_add_modal(metadata: str) -> dict:
    return modal(CallbackId.CLIENT_ADD, "Add a client", [
        _input(BlockId.NAME, "Name", placeholder="Acme Co"),
        _input(BlockId.PHONE, "Mobile number", optional=True, placeholder="(415) 555-2671"),
        _input(BlockId.CLIENT_EMAIL, "Email", optional=True),
        _input(BlockId.BANKS, "Banks to pre-select (one per line)", multiline=True,
               optional=True),
    ], submit="Add", metadata=metadata)


def import_modal(metadata: str) -> dict:
    return modal(CallbackId.IMPORT, "Import clients", [
        section("Paste a CSV with a header row: `name,email,phone,banks` "
                "(banks separated by `;`)."),
        _input(BlockId.CSV, "CSV", multiline=True,
               placeholder="name,email,phone,banks\nAcme Co,books@acme.com,4155552671,Chase"),
    ], submit="Import", metadata=metadata)


def invite_modal(client: Client, metadata: str) -> dict:
    def option(value, text):
        return {"value": value, "text": {"type": "plain_text", "text": text}}

    channels = [option("sms", f"Text {phones.display(client.phone)}")] if client.phone else []
    if client.email:
        channels.append(option("email", f"Email {client.email}"[:75]))
    purposes = [option("connect", "Connect new banks"),
                option("reconnect", "Restore broken connections")]
    return modal(CallbackId.INVITE, "Invite a client", [
        section(f"Invite {who(client)}"),
        {"type": "input", "block_id": str(BlockId.CHANNEL),
         "label": {"type": "plain_text", "text": "Send by"},
         "element": {"type": "radio_buttons", "action_id": "value", "options": channels,
                     "initial_option": channels[0]}},
        {"type": "input", "block_id": str(BlockId.PURPOSE),
         "label": {"type": "plain_text", "text": "Ask them to"},
         "element": {"type": "radio_buttons", "action_id": "value", "options": purposes,
                     "initial_option": purposes[0]}},
        _input(BlockId.BANKS, "Banks to pre-select (one per line)", multiline=True,
               optional=True, initial="\n".join(client.banks or [])),
    ], submit="Send invite", metadata=metadata)


def import_report(report) -> dict:
    lines = [f"row {r.line}: *{r.outcome}* {esc(r.name or '(no name)')}"
             + (f" — {esc(r.reason)}" if r.reason else "") for r in report.rows[:60]]
    blocks = [section(f"*Import:* {esc(report.summary)}")]
    for start in range(0, len(lines), 15):
        blocks.append(section("\n".join(lines[start:start + 15])))
    if len(report.rows) > 60:
        blocks.append(context(f"…and {len(report.rows) - 60} more rows"))
    return message(f"Import: {report.summary}", blocks)

"""Block Kit builders: status cards, lists, modals and errors, and the pieces
(`message`, `section`, `context`, `button`) from which command handlers put
together their one-line answers. Builders never touch the database beyond the
objects they are handed. Every piece of user text goes through `esc()` (so a client
named `<!channel>` pings nobody)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from bot.ids import ActionId, BlockId, CallbackId
from core.invitations.invites import Unchecked
from core.messaging.quiet_hours import zone_for
from core.platform import clock, phones
from core.platform.errors import LedgerSyncError
from core.records import Client, Invite
from core.reports import status
from core.reports.doctor import Check
from core.reports.status import ClientStatus

PAGE = 40  # rows per message: well inside Block Kit's 50 blocks


@dataclass(frozen=True)
class OpenModal:
    """A command's reply that is a modal to open (within 3 s of the click) rather
    than a message."""

    view: dict


MAX_SECTION = 2900

HELP = [
    ("connect", "link your Slack user to your LedgerSync account (on a one-time web page)"),
    ("clients [filter]", "list clients: `/ledgersync clients smith`"),
    ("client add", "add a client (a form opens)"),
    ("client edit <client>", "change a client's name, number, email or banks (a form)"),
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
    ("funnel [7d|30d|90d]", "who got how far, why the others stall, one click to follow up"),
    ("support funnel [firm:\"…\"]", "every firm's funnel and delivery failures (support)"),
    ("notify #channel", "where firm notices go (admins; until then, to admins by DM)"),
    ("doctor", "check the firm's LedgerSync set-up"),
    ("staff", "who works at the firm: role and Slack user"),
    ("staff add @colleague <email> [admin|staff]",
     "add a colleague from this workspace, connected at once (admins)"),
    ("staff remove <email>", "remove a colleague's account (admins)"),
    ("staff role <email> admin|staff", "change a colleague's role (admins)"),
    ("accounts <client>", "the client's banks, their health and accounts"),
    ("transactions <client> [account] [since]",
     "newest first, 20 at a time: `/ledgersync transactions maria checking 30d`"),
    ("api-tokens [revoke <#>]", "the firm's API tokens for connected apps (admins)"),
    ("auto-reconnect [on|off]", "reconnect invites sent by themselves when a bank breaks"),
    ("firm [set <setting> <value>]",
     "what clients see: logo_url, brand_color, phone, email, language (admins set)"),
    ("language <client> en|es", "the language of the client's texts, emails and pages"),
    ("disconnect", "unlink your Slack user"),
]


def esc(text) -> str:
    return str(text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text, limit: int) -> str:
    """`esc(text)` within `limit` characters, never cutting an entity in two."""
    escaped = esc(text)
    if len(escaped) <= limit:
        return escaped
    return re.sub(r"&[a-z]*$", "", escaped[:limit - 1]) + "…"


def section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:MAX_SECTION]}}


def context(text: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:MAX_SECTION]}]}


def plain(text: str) -> dict:
    return {"type": "plain_text", "text": text}


def button(text: str, action: ActionId, value, style: str | None = None,
           confirm: dict | None = None) -> dict:
    """A button; `confirm` is Block Kit's are-you-sure dialog, shown before it acts."""
    element = {"type": "button", "text": {"type": "plain_text", "text": text[:75]},
               "action_id": str(action), "value": str(value)[:2000]}
    if style:
        element["style"] = style
    if confirm:
        element["confirm"] = confirm
    return element


def message(text: str, blocks: list | None = None) -> dict:
    return {"text": esc(text)[:3000], "blocks": (blocks or [section(esc(text))])[:50]}


def error(text: str) -> dict:
    return message(text, [section(f":x: {esc(text)}")])


def refused(problem: LedgerSyncError) -> dict:
    """What went wrong, in one line, and the commands that put it right; for a link to
    an address someone said isn't the client's, the warning and *Send anyway* (for
    staff who checked it with them)."""
    if not isinstance(problem, Unchecked):
        fixes = fix_commands(problem)
        if not fixes:
            return error(str(problem))
        return message(str(problem), [section(f":x: {esc(problem)}"),
                                      context("Fix it: " + " · ".join(fixes))])
    value = json.dumps({"client": problem.client.id, "purpose": problem.purpose,
                        "channel": problem.disowned.invite.channel})
    return message(str(problem), [
        section(f":warning: {esc(problem)}"),
        {"type": "actions", "elements": [
            button("Send anyway", ActionId.RESEND_ANYWAY, value, "danger")]},
    ])


def fix_commands(problem: LedgerSyncError) -> list[str]:
    """The Slack commands that put `problem` right (its `fixes`)."""
    words = {"edit_client": "client edit {}", "invite_by": "resend {} {}",
             "resend_force": "resend {} force"}
    return [f"`/ledgersync {esc(words[f.action].format(f.client, f.detail).strip())}`"
            for f in getattr(problem, "fixes", ()) if f.action in words]


BUSY = "LedgerSync is busy: nothing was done. Try again in a minute."
BUSY_MAYBE = ("LedgerSync is busy and may not have done that. In a minute, check "
              "(`/ledgersync status <client>`) before trying again.")


def busy(maybe_done: bool = False) -> dict:
    """The answer when the work can't be handed over (the job queue is down, or
    didn't say in time whether it took it)."""
    text = BUSY_MAYBE if maybe_done else BUSY
    return message(text, [section(f":hourglass: {text}")])


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


# Where the client stands, and the next step (a button of the card, in bold).
STATE_WORDS = {
    "not_invited": ":wave: Not invited yet — *Send invite* when they're ready.",
    "pending": ":hourglass_flowing_sand: Invited, not accepted yet — link works until {at} "
               "({left}). *Remind* if they haven't seen it.",
    "expired": ":x: Link expired {at} — *Resend*",
    "revoked": ":no_entry: Link revoked {at} — *Resend* if they should still connect.",
    "superseded": ":arrows_counterclockwise: Link replaced {at} — *Resend* for a working one.",
    "accepted": ":large_yellow_circle: Accepted {at} — no bank connected yet. *Send a new link* "
                "if they need to sign in again.",
    "connected": ":white_check_mark: Connected: {banks}",
    "needs_restoring": ":red_circle: Needs restoring: {banks} — *Ask to reconnect*",
    "restoring_asked": ":red_circle: Needs restoring: {banks} — asked to reconnect, link works "
                       "until {at} ({left}). *Remind* if they haven't seen it.",
    "opted_out": ":no_bell: Opted out of texts — nothing is sent until they text START. "
                 "Call them to ask.",
    "disowned": ":warning: Someone who opened the link sent to {to} said it isn't them "
                "({at}): {to} must be checked with the client before anything is sent. "
                "Correct it if it's wrong; *Resend* asks first.",
}
# The card's primary button: the next step of each state (none when all is well).
PRIMARY = {"not_invited": ActionId.RESEND, "pending": ActionId.REMIND,
           "expired": ActionId.RESEND, "revoked": ActionId.RESEND,
           "superseded": ActionId.RESEND, "accepted": ActionId.RESEND,
           "needs_restoring": ActionId.RECONNECT, "restoring_asked": ActionId.REMIND}
RESEND_LABEL = {"not_invited": "Send invite", "accepted": "Send a new link",
                "connected": "Send a new link"}
DATE_TIME = "{date_short_pretty} {time}"
TIMELINE_LINES = 12
CONNECTION_LINES = 20


def when(at, tz) -> str:
    """A Slack date token: each reader sees the time in their own zone. The fallback
    (for clients that can't show it) is the time in `tz`, with the zone's name."""
    unix = int(clock.as_utc(at).timestamp())
    return f"<!date^{unix}^{DATE_TIME}|{status.local_text(at, tz)}>"


def status_card(info: ClientStatus, read_only: bool = False) -> dict:
    client = info.client
    blocks = [section(f"{who(client)}\n{_state_line(info)}")]
    if info.opted_out and info.situation.key != "opted_out":
        blocks.append(section(":no_bell: Opted out of texts: nothing is sent until they "
                              "text START."))
    timeline = _timeline(info)
    if timeline:
        blocks.append(section(timeline))
    blocks.append(section(_connections(info)))
    if not read_only:
        blocks.append({"type": "actions", "block_id": f"card-{client.id}",
                       "elements": _card_buttons(info)})
    return message(f"Status of {client.name}", blocks)


def _state_line(info: ClientStatus) -> str:
    where = info.situation
    words = STATE_WORDS.get(where.key)
    if words is None:
        return esc(status.humanise(where.key))
    return words.format(at=when(where.at, info.zone) if where.at else "", left=esc(where.left),
                        banks=clip(where.bank_names, 600), to=esc(where.to))


def _timeline(info: ClientStatus) -> str:
    """The latest lines that fit one section, oldest first (a date token is never cut)."""
    lines, room = [], MAX_SECTION - 40
    for line in reversed(info.timeline[-TIMELINE_LINES:]):
        text = f"{when(line.at, info.zone)} — {clip(line.text, 500)}"
        room -= len(text) + 1
        if room < 0:
            break
        lines.insert(0, text)
    if not lines:
        return ""
    head = "*Timeline*" if len(lines) == len(info.timeline) else f"*Timeline* (latest {len(lines)})"
    return "\n".join([head, *lines])


def _connections(info: ClientStatus) -> str:
    if not info.connections:
        return "*Bank connections:* none yet"
    icons = {"active": ":large_green_circle:", "needs_reconnect": ":red_circle:",
             "disconnected": ":white_circle:"}
    lines = [f"{icons.get(c.status, ':white_circle:')} {clip(c.institution_name, 100)}"
             f"{_connection_note(c)}" for c in info.connections[:CONNECTION_LINES]]
    more = len(info.connections) - CONNECTION_LINES
    if more > 0:
        lines.append(f"…and {more} more")
    return "*Bank connections*\n" + "\n".join(lines)


def _connection_note(connection) -> str:
    if connection.status == "needs_reconnect":
        why = f" ({clip(connection.last_error, 100)})" if connection.last_error else ""
        return f" — needs restoring{why}"
    return " — disconnected" if connection.status == "disconnected" else ""


def _card_buttons(info: ClientStatus) -> list:
    """The useful next step first, as the primary button; Revoke asks before it acts."""
    cid, key = info.client.id, info.situation.key
    wanted = [("Remind", ActionId.REMIND)] if info.state == "pending" else []
    wanted.append((RESEND_LABEL.get(key, "Resend"), ActionId.RESEND))
    if info.broken:
        wanted.append(("Ask to reconnect", ActionId.RECONNECT))
    primary = PRIMARY.get(key)
    wanted.sort(key=lambda pair: pair[1] != primary)
    buttons = [button(label, action, cid, "primary" if action == primary else None)
               for label, action in wanted]
    if info.state == "pending":
        buttons.append(revoke_button(info.client))
    return buttons


def revoke_button(client: Client) -> dict:
    name = clip(client.name, 200)
    confirm = {"title": plain("Revoke this link?"),
               "text": {"type": "mrkdwn", "text": f"Revoke {name}'s link? It stops working at "
                                                  "once and they are signed out."},
               "confirm": plain("Revoke"), "deny": plain("Keep"), "style": "danger"}
    return button("Revoke", ActionId.REVOKE, client.id, "danger", confirm=confirm)


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
    lines = [f":white_check_mark: {check_text(c)}" if c.ok else
             f":x: {check_text(c)} — {esc(c.fix)}" for c in checks]
    ok = all(c.ok for c in checks)
    head = "Everything looks right" if ok else f"{sum(not c.ok for c in checks)} thing(s) to fix"
    return message(f"Doctor: {head}", [section(f"*{esc(firm_name)}* — {head}"),
                                        section("\n".join(lines))])


def check_text(check: Check) -> str:
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


# --- linking a LedgerSync account: a one-time web page, never a password in Slack -------

LINK_NOTE = ("The page works for 10 minutes and once only, in the browser that opens it "
             "first. Never type your password in Slack.")


def link_blocks(url: str) -> list:
    """The button to a one-time linking page (`core.firms.slack_accounts.ask`)."""
    opener = {"type": "button", "text": plain("Connect LedgerSync"), "style": "primary",
              "action_id": str(ActionId.LINK_OPENED), "url": url}
    return [section("Connect your LedgerSync account on a secure page: sign in there with "
                    "the email and password you use at app.ledgersync.com."),
            {"type": "actions", "elements": [opener]}, context(LINK_NOTE)]


def link_message(url: str) -> dict:
    return message("Connect your LedgerSync account: open the one-time page "
                   "(valid 10 minutes).", link_blocks(url))


def link_modal(url: str) -> dict:
    """App Home's Connect: the same button, in a modal with nothing to submit."""
    return {"type": "modal", "title": plain("Connect LedgerSync"),
            "close": plain("Close"), "blocks": link_blocks(url)}


def link_result(headline: str, *, ok: bool, fix: str = "", warning: str = "") -> dict:
    """What a Save on the linking page did, told to the person in Slack: the seed's
    green check, or red X with the reason and the fix."""
    if ok:
        lines = [f":white_check_mark: *{esc(headline)}*"]
        lines += [f":warning: {esc(warning)}"] if warning else []
    else:
        lines = [f":x: *Not connected: {esc(headline)}*", f"*How to fix it:* {esc(fix)}"]
    return message(headline if ok else f"Not connected: {headline}",
                   [section("\n".join(lines))])


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


def client_add_modal(metadata: str) -> dict:
    return modal(CallbackId.CLIENT_ADD, "Add a client", [
        _input(BlockId.NAME, "Name", placeholder="Acme Co"),
        _input(BlockId.PHONE, "Mobile number", optional=True, placeholder="(415) 555-2671"),
        _input(BlockId.CLIENT_EMAIL, "Email", optional=True),
        _input(BlockId.BANKS, "Banks to pre-select (one per line)", multiline=True,
               optional=True),
    ], submit="Add", metadata=metadata)


def client_edit_modal(client: Client, metadata: str) -> dict:
    return modal(CallbackId.CLIENT_EDIT, "Edit a client", [
        _input(BlockId.NAME, "Name", initial=client.name),
        _input(BlockId.PHONE, "Mobile number", optional=True,
               initial=phones.display(client.phone) if client.phone else ""),
        _input(BlockId.CLIENT_EMAIL, "Email", optional=True, initial=client.email or ""),
        _input(BlockId.BANKS, "Banks to pre-select (one per line)", multiline=True,
               optional=True, initial="\n".join(client.banks or [])),
    ], submit="Save", metadata=metadata)


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

"""App Home views (Block Kit). Builders only: they render what core worked out
(`core.reports.overview`; its funnel section: `funnel_views.home_section`) and touch no
database. Every piece of user text goes through `esc()`/`clip()`; times are Slack date
tokens; a Home never passes Block Kit's 100 blocks (each part shows at most
`overview.SHOWN` rows, then "and N more")."""

from __future__ import annotations

from bot.funnel_views import home_section
from bot.ids import ActionId
from bot.views import button, check_text, clip, context, esc, revoke_button, section, when
from core.firms.access import Actor
from core.reports.overview import Failed, Happened, OpenInvite, Overview, Part, Restoring

MAX_BLOCKS = 100
DIVIDER = {"type": "divider"}
NAME = 100  # characters of a client's name shown in a row
SUPPORT_GUIDE = [
    ("a client", '`/ledgersync status maria firm:"Smith & Co"`'),
    ("a number", '`/ledgersync status (415) 555-2671 firm:"Smith & Co"`'),
    ("an email", '`/ledgersync status books@acme.com firm:"Smith & Co"`'),
    ("a firm", '`/ledgersync doctor firm:"Smith & Co"` · `pending firm:"…"` · '
               '`staff firm:"…"` · `clients firm:"…"`'),
]


def home(blocks: list) -> dict:
    """A Home view, never over Block Kit's limit (the last block says so if cut)."""
    if len(blocks) > MAX_BLOCKS:
        blocks = [*blocks[:MAX_BLOCKS - 1], context("…more than fits here: `/ledgersync help`")]
    return {"type": "home", "blocks": blocks}


# --- who is looking ---------------------------------------------------------------------


def not_linked() -> dict:
    return home([
        section(":x: *Not connected to LedgerSync.* Your Slack user isn't linked to a "
                "LedgerSync account yet, so there is nothing to show."),
        {"type": "actions", "block_id": "home-connect",
         "elements": [button("Connect", ActionId.CONNECT, "connect", "primary")]},
        context("Or run `/ledgersync connect`. `/ledgersync help` lists every command."),
    ])


def support(actor: Actor) -> dict:
    member = actor.support
    lines = [f"• {what}: {esc(example)}" for what, example in SUPPORT_GUIDE]
    return home([
        section(f":white_check_mark: Connected as *LedgerSync support* "
                f"({esc(member.email)}): read-only, every firm."),
        section("*Look something up* — name the firm with `firm:\"…\"`:\n" + "\n".join(lines)),
        context("Every look-up is written to the firm's event log. "
                "`/ledgersync help` lists every command."),
    ])


def broken(ref: str) -> dict:
    return home([section(
        f":warning: Your LedgerSync Home couldn't be loaded just now. Open it again in a "
        f"minute; if it keeps happening, quote ref {esc(ref)} to support.")])


# --- staff: the firm at a glance --------------------------------------------------------


def staff(actor: Actor, seen: Overview) -> dict:
    funnel = [*home_section(seen.funnel), DIVIDER] if seen.funnel is not None else []
    return home([
        *_heading(actor, seen), DIVIDER, *funnel,
        *_invites(seen.invites), DIVIDER,
        *_restoring(seen.restoring), DIVIDER,
        *_recent(seen.recent), DIVIDER,
        *_failed(seen.failed),
        context(f"Updated {when(seen.now, seen.zone)} · `/ledgersync help` "
                "lists every command."),
    ])


def _heading(actor: Actor, seen: Overview) -> list:
    person = actor.staff
    check = seen.notices
    where = (f":mega: {check_text(check)}" if check.ok else
             f":x: {check_text(check)} — {esc(check.fix)}")
    return [section(f":white_check_mark: Connected as *{clip(person.name or person.email, 200)}* "
                    f"({person.role}) at *{clip(seen.firm.name, 200)}*"),
            section(where)]


def _head(title: str, part: Part, empty: str, order: str = "") -> dict:
    if not part.total:
        return section(f"*{title}* — {empty}")
    return section(f"*{title}* ({part.total}){order}")


def _more(part: Part, where: str) -> list:
    return [context(f"and {part.more} more: {where}")] if part.more else []


def _invites(part: Part) -> list:
    head = _head("Open invites", part, "none open.", ", soonest expiry first")
    return [head, *_rows(part.rows, _invite_row), *_more(part, "`/ledgersync pending`")]


def _invite_row(row: OpenInvite) -> list:
    how = "SMS" if row.channel == "sms" else "email"
    why = ", to restore bank connections" if row.purpose == "reconnect" else ""
    cid = row.client.id
    return [section(f"*{clip(row.client.name, NAME)}* — {how}{why}, expires "
                    f"{when(row.expires_at, row.zone)} ({esc(row.left)})"),
            _actions(f"invite-{cid}", [button("Remind", ActionId.REMIND, cid, "primary"),
                                       button("Resend", ActionId.RESEND, cid),
                                       revoke_button(row.client)])]


def _restoring(part: Part) -> list:
    blocks = [_head("Needs restoring", part, "every bank connection works."),
              *_rows(part.rows, _restore_row)]
    return [*blocks, *_more(part, "ask them all with `/ledgersync invite-all reconnect`")]


def _restore_row(row: Restoring) -> list:
    cid, tz = row.client.id, row.zone
    banks = clip(", ".join(row.banks), 600)
    if row.asked_until is None:
        state = f"since {when(row.since, tz)}"
        wanted = [button("Ask to reconnect", ActionId.RECONNECT, cid, "primary")]
    else:
        state = f"asked to reconnect, link works until {when(row.asked_until, tz)}"
        wanted = [button("Remind", ActionId.REMIND, cid, "primary"),
                  button("Ask to reconnect", ActionId.RECONNECT, cid)]
    return [section(f"*{clip(row.client.name, NAME)}* — :red_circle: {banks} — {state}"),
            _actions(f"restore-{cid}", wanted)]


def _recent(part: Part) -> list:
    lines = [_recent_line(row) for row in part.rows]
    blocks = [_head("Accepted and connected, last 14 days", part, "nothing yet.")]
    if lines:
        blocks.append(section("\n".join(lines)))
    return [*blocks, *_more(part, "each client's story: `/ledgersync status &lt;client&gt;`")]


def _recent_line(row: Happened) -> str:
    return f"{when(row.at, row.zone)} — *{clip(row.client.name, NAME)}*: {clip(row.text, 200)}"


def _failed(part: Part) -> list:
    lines = [_failed_line(row) for row in part.rows]
    blocks = [_head("Not delivered, last 7 days", part, "everything went through.")]
    if lines:
        blocks.append(section("\n".join(lines)))
    return [*blocks, *_more(part, "each client's deliveries: `/ledgersync status &lt;client&gt;`")]


def _failed_line(row: Failed) -> str:
    who = f"*{clip(row.client.name, NAME)}*: " if row.client is not None else ""
    return f"{when(row.at, row.zone)} — {who}{clip(row.text, 200)}"


def _rows(rows: list, render) -> list:
    return [block for row in rows for block in render(row)]


def _actions(block_id: str, elements: list) -> dict:
    return {"type": "actions", "block_id": block_id, "elements": elements}

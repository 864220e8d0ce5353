"""Block Kit for bulk runs: the confirmation before anything goes out, and the
one progress message that is updated in place until the final summary."""

from __future__ import annotations

from collections import defaultdict

from bot.ids import ActionId, BlockId, CallbackId
from bot.views import button, context, esc, message, section
from core.invitations.bulk_plan import SELECTIONS, Plan
from core.invitations.bulk_runs import Progress
from core.records import BulkItem

NAMES_SHOWN = 10


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"about {max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"about {round(seconds / 60)} min"
    return f"about {seconds / 3600:.1f} h"


def _by_reason(items: list[BulkItem]) -> list[str]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for item in items:
        grouped[item.reason or "no reason"].append(item.label)
    lines = []
    for reason, names in sorted(grouped.items(), key=lambda kv: -len(kv[1])):
        shown = ", ".join(esc(n) for n in names[:NAMES_SHOWN])
        more = f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else ""
        lines.append(f"• {esc(reason)} ({len(names)}): {shown}{more}")
    return lines


def confirm(plan: Plan, sms_rate: float) -> dict:
    run, count = plan.run, plan.sms + plan.email
    head = f"*Invite {SELECTIONS[run.selection]}* (to {run.purpose})"
    if count == 0:
        blocks = [section(f"{head}\nNobody to invite."), *_skipped(plan)]
        return message("Nobody to invite", blocks)
    summary = (f"{head}\n*{count}* will get an invite: {plan.sms} by SMS, {plan.email} by "
               f"email. Takes {duration(plan.eta_seconds)} at the sender's rate "
               f"({sms_rate:g} text/s).")
    blocks = [section(summary), *_skipped(plan), {"type": "actions", "elements": [
        button(f"Send {count} invites", ActionId.BULK_CONFIRM, run.id, "primary"),
        button("Cancel", ActionId.BULK_CANCEL, run.id)]}]
    return message(f"About to invite {count} clients", blocks)


def _skipped(plan: Plan) -> list[dict]:
    if not plan.skipped:
        return []
    lines = _by_reason(plan.skipped)
    return [section(f"*Skipped {len(plan.skipped)}:*\n" + "\n".join(lines))]


def progress(p: Progress, failures: list[BulkItem]) -> dict:
    c, run = p.counts, p.run
    of = p.total - c["skipped"]
    line = f"Sent {c['sent']} of {of} · {c['failed']} failed · {c['skipped']} skipped"
    if c["waiting"]:
        line += f" · {c['waiting']} waiting for quiet hours to end"
    if run.status == "running":
        text = f":hourglass_flowing_sand: {line} · {duration(p.eta_seconds)} left"
        buttons = [button("Cancel", ActionId.BULK_CANCEL, run.id, "danger")]
    elif run.status == "canceled":
        text = f":no_entry_sign: Canceled. {line} · {c['canceled']} not sent"
        buttons = []
    else:
        text = f":white_check_mark: Done. {line}"
        buttons = [button("Retry failed", ActionId.BULK_RETRY, run.id)] if failures else []
    blocks = [section(f"*Bulk invite #{run.id}*: {text}")]
    if failures:
        blocks.append(section("*Failed:*\n" + "\n".join(
            f"• {esc(i.label)}: {esc(i.reason or 'not delivered')}" for i in failures[:20])))
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    blocks.append(context(f"Run #{run.id} · `/ledgersync bulk {run.id}` for its status"))
    return message(f"Bulk invite #{run.id}: {line}", blocks)


def list_modal(metadata: str) -> dict:
    return {
        "type": "modal", "callback_id": str(CallbackId.BULK_LIST), "private_metadata": metadata,
        "title": {"type": "plain_text", "text": "Invite a list"},
        "submit": {"type": "plain_text", "text": "Check the list"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [{"type": "input", "block_id": str(BlockId.NAMES), "label": {
            "type": "plain_text", "text": "Names, phones or emails, one per line (or a CSV)"},
            "element": {"type": "plain_text_input", "action_id": "value", "multiline": True,
                        "max_length": 3000}}]}

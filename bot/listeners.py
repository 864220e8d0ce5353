"""The Slack app's listeners, in one table (`register`), and what each does: a plain
function that returns its answer. `answers` and `submitted` (`deferral.py`)
acknowledge, work it out (here or on a worker) and send it. Who is asking
(`context["actor"]`) was resolved once, by the middleware."""

from __future__ import annotations

import logging

from slack_bolt import App

from bot.ids import ActionId, BlockId, CallbackId, record_id
from core.invitations import bulk_sending, clients, invites

from . import (
    bulk_commands,
    commands,
    connect_account,
    funnel_buttons,
    home,
    installations,
    middleware,
    progress,
    threads,
    views,
)
from .deferral import Then, answers, json_of, submitted, worked_out

log = logging.getLogger(__name__)


def register(app: App) -> None:
    app.use(middleware.resolve_actor)
    app.command("/ledgersync")(on_command)
    for action in (ActionId.RESEND, ActionId.REMIND, ActionId.REVOKE, ActionId.RECONNECT):
        app.action(str(action))(on_card_button)
    app.action(str(ActionId.RESEND_ANYWAY))(on_resend_anyway)
    app.action(str(ActionId.PICK))(on_pick)
    app.action(str(ActionId.MORE))(on_more)
    app.view(str(CallbackId.CLIENT_ADD))(on_client_add)
    app.view(str(CallbackId.CLIENT_EDIT))(on_client_edit)
    app.view(str(CallbackId.IMPORT))(on_import)
    app.view(str(CallbackId.INVITE))(on_invite)
    app.event("message")(on_message)
    for action in (ActionId.BULK_CONFIRM, ActionId.BULK_CANCEL, ActionId.BULK_RETRY):
        app.action(str(action))(on_bulk_button)
    app.view(str(CallbackId.BULK_LIST))(on_bulk_list)
    app.action(str(ActionId.FUNNEL_FOLLOW_UP))(funnel_buttons.on_funnel_follow_up)
    installations.register(app)
    connect_account.register(app)
    home.register(app)


def _value(view, block: BlockId):
    state = view["state"]["values"].get(str(block), {}).get("value", {})
    if "selected_option" in state:
        return (state["selected_option"] or {}).get("value")
    return state.get("value") or ""


# --- commands and buttons -----------------------------------------------------------------


@answers(replace=False, in_request=lambda body: commands.opens_modal(body.get("text", "")))
def on_command(command, context):
    meta = {"response_url": command.get("response_url", ""), "channel": command.get("channel_id"),
            "team_id": command.get("team_id"), "user_id": command.get("user_id")}
    return commands.run(command.get("text", ""), context["actor"], meta)


@answers(replace=True)
def on_card_button(action, context):
    """Resend · Remind · Revoke · Ask to reconnect on a status card: the card again."""
    return commands.on_client(action["action_id"], action.get("value"), context["actor"])


@answers(replace=True)
def on_resend_anyway(action, context):
    """*Send anyway* on the warning that the address must be checked: what was sent."""
    return commands.resend_anyway(json_of(action.get("value")), context["actor"])


def _picked_opens_modal(body: dict) -> bool:
    value = json_of(((body.get("actions") or [{}])[0]).get("value"))
    return value.get("cmd") == "invite" and not value.get("channel")


@answers(replace=True, in_request=_picked_opens_modal)
def on_pick(action, context):
    """A client picked among several matches: the command, for that client."""
    return commands.picked(json_of(action.get("value")), context["actor"])


@answers(replace=True)
def on_more(action, context):
    return commands.more(json_of(action.get("value")), context["actor"])


@answers(replace=True)
def on_bulk_button(body, action, context):
    """Send / Cancel / Retry failed on a bulk run (same checks as the command)."""
    actor, action_id = context["actor"], action["action_id"]
    if action_id == ActionId.BULK_CONFIRM:
        return _start_bulk(actor, action.get("value"), (body.get("channel") or {}).get("id"))
    change = (bulk_commands.canceled if action_id == ActionId.BULK_CANCEL
              else bulk_commands.retried)
    run = change(actor, action.get("value"))

    def then():
        if action_id == ActionId.BULK_RETRY:
            bulk_sending.kick(run.id)
        progress.report(run.id, force=True)

    return Then(bulk_commands.view(run.id), then)


def _start_bulk(actor, value, channel) -> Then:
    run = bulk_commands.confirmed(actor, value)
    if progress.post(run, channel):
        note = f"Bulk invite #{run.id} started: its progress is posted in this channel."
    else:
        note = (f"Bulk invite #{run.id} started. Invite me to this channel to watch it here; "
                f"meanwhile `/ledgersync bulk {run.id}` shows its progress.")

    def then():
        bulk_sending.kick(run.id)
        progress.report(run.id, force=True)

    return Then(views.message(note), then)


# --- modals ---------------------------------------------------------------------------------


@submitted(check_first=True)
def on_client_add(view, context):
    actor = context["actor"]
    actor.require("client_add")
    client = clients.add(actor.firm, _value(view, BlockId.NAME),
                         phone=_value(view, BlockId.PHONE),
                         email=_value(view, BlockId.CLIENT_EMAIL),
                         banks=_value(view, BlockId.BANKS), actor=actor.label)
    return views.message(f"Added {client.name}", [views.section(
        f":white_check_mark: Added {views.who(client)}. Invite them: "
        f"`/ledgersync invite {views.esc(client.name)}`")])


@submitted(check_first=True)
def on_client_edit(view, context):
    actor = context["actor"]
    actor.require("client_add")
    client = actor.client(actor.firm, record_id(json_of(view.get("private_metadata"))
                                                .get("client")))
    updated = clients.update(client, name=_value(view, BlockId.NAME),
                             phone=_value(view, BlockId.PHONE),
                             email=_value(view, BlockId.CLIENT_EMAIL),
                             banks=_value(view, BlockId.BANKS), actor=actor.label)
    return views.message(f"Updated {updated.name}", [views.section(
        f":white_check_mark: Updated {views.who(updated)}.")])


@submitted()
def on_import(view, context):
    actor = context["actor"]
    actor.require("import")
    return views.import_report(
        clients.import_csv(actor.firm, _value(view, BlockId.CSV), actor=actor.label))


@submitted()
def on_invite(view, context):
    actor = context["actor"]
    actor.require("invite")
    meta = json_of(view.get("private_metadata"))
    client = actor.client(actor.firm, record_id(meta.get("client")))
    banks = [b for b in _value(view, BlockId.BANKS).splitlines() if b.strip()]
    sent = invites.send(client, _value(view, BlockId.CHANNEL),
                        purpose=_value(view, BlockId.PURPOSE) or "connect",
                        banks=banks or None, by=actor.staff)
    return views.sent("Invited", client, sent.invite, sent.to)


@submitted()
def on_bulk_list(view, context):
    meta = json_of(view.get("private_metadata"))
    return bulk_commands.invite_list(_value(view, BlockId.NAMES), meta.get("channel"),
                                     context["actor"])


# --- events ------------------------------------------------------------------------------------


def on_message(event, client, context):
    """A staff reply in a client's thread is texted to the client (✅ on the reply);
    a refusal is shown to its writer alone. Other messages are none of our business."""
    if not threads.is_thread_reply(event):
        return

    def answer():
        thread = threads.client_thread(event)
        return None if thread is None else threads.answer(context["actor"], thread, event)

    texted, problem = worked_out("reply", answer)
    if problem is not None:
        client.chat_postEphemeral(channel=event["channel"], user=event.get("user"),
                                  thread_ts=event["thread_ts"], text=f":x: {texted['text']}")
    elif texted is not None:
        client.reactions_add(channel=event["channel"], timestamp=event["ts"],
                             name="white_check_mark")

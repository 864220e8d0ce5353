"""Bolt listeners: acknowledge first, then do the work and answer.

Listeners run on Bolt's thread pool; each opens its own database connection.
Who is asking (`context["actor"]`) was resolved once, by the middleware."""

from __future__ import annotations

import json
import logging
import secrets

from slack_bolt import App
from slack_sdk.webhook import WebhookClient

from core import access, clients, db, invites
from core import bulk as core_bulk
from core.errors import LedgerSyncError

from . import bulk, commands, middleware, progress, threads, views
from .ids import ActionId, BlockId, CallbackId, record_id

log = logging.getLogger(__name__)


def register(app: App) -> None:
    app.use(middleware.resolve_actor)
    app.command("/ledgersync")(on_command)
    for action in (ActionId.RESEND, ActionId.REMIND, ActionId.REVOKE, ActionId.RECONNECT):
        app.action(str(action))(on_card_button)
    app.action(str(ActionId.PICK))(on_pick)
    app.action(str(ActionId.MORE))(on_more)
    app.view(str(CallbackId.CONNECT))(on_connect)
    app.view(str(CallbackId.CLIENT_ADD))(on_client_add)
    app.view(str(CallbackId.IMPORT))(on_import)
    app.view(str(CallbackId.INVITE))(on_invite)
    app.event("message")(on_message)
    for action in (ActionId.BULK_CONFIRM, ActionId.BULK_CANCEL, ActionId.BULK_RETRY):
        app.action(str(action))(on_bulk_button)
    app.view(str(CallbackId.BULK_LIST))(on_bulk_list)


def failure(what: str) -> dict:
    ref = secrets.token_hex(3)
    log.exception("slack %s failed (ref %s)", what, ref)
    return views.error(f"Something went wrong with `{what}`. Quote ref {ref} to support.")


def on_command(ack, command, respond, client, context):
    ack()
    meta = {"response_url": command.get("response_url", ""), "channel": command.get("channel_id")}
    try:
        with db.connection():
            reply = commands.run(command.get("text", ""), context["actor"], meta)
    except Exception:  # noqa: BLE001 - the user gets one line and a reference
        reply = failure((command.get("text") or "help").split(" ")[0][:20])
    if isinstance(reply, commands.OpenModal):
        client.views_open(trigger_id=command["trigger_id"], view=reply.view)
    else:
        respond(response_type="ephemeral", **reply)


def on_card_button(ack, body, action, respond, context):
    ack()
    try:
        with db.connection():
            card = commands.on_client(action["action_id"], action["value"], context["actor"])
        respond(replace_original=True, **card)
    except LedgerSyncError as problem:
        respond(replace_original=False, response_type="ephemeral", **views.error(str(problem)))
    except Exception:  # noqa: BLE001
        respond(replace_original=False, response_type="ephemeral",
                **failure(action.get("action_id", "button")))


def on_pick(ack, body, action, respond, client, context):
    ack()
    try:
        with db.connection():
            reply = commands.picked(_json(action.get("value")), context["actor"])
    except LedgerSyncError as problem:
        reply = views.error(str(problem))
    except Exception:  # noqa: BLE001 - the user gets one line and a reference
        reply = failure("pick")
    if isinstance(reply, commands.OpenModal):
        client.views_open(trigger_id=body["trigger_id"], view=reply.view)
    else:
        respond(replace_original=True, **reply)


def on_more(ack, action, respond, context):
    ack()
    try:
        with db.connection():
            reply = commands.more(_json(action.get("value")), context["actor"])
    except LedgerSyncError as problem:
        reply = views.error(str(problem))
    except Exception:  # noqa: BLE001
        reply = failure("more")
    respond(replace_original=True, **reply)


def _json(value) -> dict:
    try:
        data = json.loads(value or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _value(view, block: BlockId):
    state = view["state"]["values"].get(str(block), {}).get("value", {})
    if "selected_option" in state:
        return (state["selected_option"] or {}).get("value")
    return state.get("value") or ""


def on_connect(ack, body, view):
    with db.connection():
        result = access.connect(body["team"]["id"], body["user"]["id"],
                                _value(view, BlockId.EMAIL), _value(view, BlockId.PASSWORD))
    if result.ok:
        staff = result.staff
        detail = (f"Connected as {staff.name or staff.email} ({staff.role}) at "
                  f"{staff.firm.name}.")
        if result.warning:
            detail += f"\n:warning: {result.warning}"
        ack(response_action="update", view=views.connect_result(True, "Connected", detail))
    else:
        ack(response_action="update",
            view=views.connect_result(False, result.reason, "Not connected.", result.fix))


def _reply(view, message: dict) -> None:
    url = _json(view.get("private_metadata")).get("response_url")
    if url:
        WebhookClient(url).send(response_type="ephemeral", **message)


def on_client_add(ack, body, view, context):
    actor = context["actor"]
    try:
        with db.connection():
            actor.require("client_add")
            client = clients.add(actor.firm, _value(view, BlockId.NAME),
                                 phone=_value(view, BlockId.PHONE),
                                 email=_value(view, BlockId.CLIENT_EMAIL),
                                 banks=_value(view, BlockId.BANKS), actor=actor.label)
            reply = views.message(f"Added {client.name}", [views.section(
                f":white_check_mark: Added {views.who(client)}. Invite them: "
                f"`/ledgersync invite {views.esc(client.name)}`")])
    except LedgerSyncError as problem:
        field = _field_for(str(problem))
        ack(response_action="errors", errors={str(field): str(problem)[:150]})
        return
    ack()
    _reply(view, reply)


def _field_for(problem: str) -> BlockId:
    lowered = problem.lower()
    if "phone" in lowered or "number" in lowered:
        return BlockId.PHONE
    if "email" in lowered:
        return BlockId.CLIENT_EMAIL
    return BlockId.NAME


def on_import(ack, body, view, context):
    ack()
    actor = context["actor"]
    try:
        with db.connection():
            actor.require("import")
            report = clients.import_csv(actor.firm, _value(view, BlockId.CSV), actor=actor.label)
        _reply(view, views.import_report(report))
    except LedgerSyncError as problem:
        _reply(view, views.error(str(problem)))


def on_invite(ack, body, view, context):
    ack()
    actor = context["actor"]
    meta = _json(view.get("private_metadata"))
    try:
        with db.connection():
            actor.require("invite")
            client = actor.client(actor.firm, record_id(meta.get("client")))
            sent = invites.send(client, _value(view, BlockId.CHANNEL),
                                purpose=_value(view, BlockId.PURPOSE) or "connect",
                                banks=[b for b in _value(view, BlockId.BANKS).splitlines()
                                       if b.strip()] or None, by=actor.staff)
            reply = views.sent("Invited", client, sent.invite, sent.to)
    except LedgerSyncError as problem:
        reply = views.error(str(problem))
    except Exception:  # noqa: BLE001
        reply = failure("invite")
    _reply(view, reply)


def on_message(event, client, context):
    """A staff reply in a client's thread is texted to the client (✅ on the reply);
    a refusal is shown to its writer alone. Other messages are none of our business."""
    if not threads.is_thread_reply(event):
        return
    try:
        with db.connection():
            thread = threads.client_thread(event)
            if thread is None:
                return
            texted = threads.answer(context["actor"], thread, event)
        if texted is not None:
            client.reactions_add(channel=event["channel"], timestamp=event["ts"],
                                 name="white_check_mark")
    except LedgerSyncError as problem:
        client.chat_postEphemeral(channel=event["channel"], user=event.get("user"),
                                  thread_ts=event["thread_ts"], text=f":x: {problem}")
    except Exception:  # noqa: BLE001 - the writer sees one line and a reference
        message = failure("reply")
        client.chat_postEphemeral(channel=event["channel"], user=event.get("user"),
                                  thread_ts=event["thread_ts"], text=message["text"])


def on_bulk_button(ack, body, action, respond, context):
    """Send / Cancel / Retry failed on a bulk run (same checks as the command)."""
    ack()
    actor, action_id = context["actor"], action["action_id"]
    try:
        with db.connection():
            if action_id == ActionId.BULK_CONFIRM:
                _start_bulk(actor, action["value"], (body.get("channel") or {}).get("id"),
                            respond)
                return
            run = (bulk.canceled if action_id == ActionId.BULK_CANCEL else bulk.retried)(
                actor, action["value"])
            respond(replace_original=True, **bulk.view(run.id))
            if action_id == ActionId.BULK_RETRY:
                core_bulk.kick(run.id)
            progress.report(run.id, force=True)
    except LedgerSyncError as problem:
        respond(replace_original=False, response_type="ephemeral", **views.error(str(problem)))
    except Exception:  # noqa: BLE001
        respond(replace_original=False, response_type="ephemeral", **failure(action_id))


def _start_bulk(actor, value, channel, respond) -> None:
    run = bulk.confirmed(actor, value)
    if progress.post(run, channel):
        note = f"Bulk invite #{run.id} started: its progress is posted in this channel."
    else:
        note = (f"Bulk invite #{run.id} started. Invite me to this channel to watch it here; "
                f"meanwhile `/ledgersync bulk {run.id}` shows its progress.")
    respond(replace_original=True, **views.message(note))
    core_bulk.kick(run.id)
    progress.report(run.id, force=True)


def on_bulk_list(ack, body, view, context):
    ack()
    meta = _json(view.get("private_metadata"))
    try:
        with db.connection():
            reply = bulk.invite_list(_value(view, BlockId.NAMES), meta.get("channel"),
                                     context["actor"])
    except LedgerSyncError as problem:
        reply = views.error(str(problem))
    _reply(view, reply)

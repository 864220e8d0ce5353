"""Bolt listeners: acknowledge first, then work out the answer and send it.

Every listener is a plain function that returns its answer; one of three
decorators does the rest, the same way for all: `answers` (slash commands and
buttons), `submitted` (modals), and `worked_out` beneath both — a database
connection for the work, a `LedgerSyncError` turned into its one line, anything
else into "Something went wrong … quote ref …" (logged with the reference).
Listeners run on Bolt's thread pool. Who is asking (`context["actor"]`) was
resolved once, by the middleware."""

from __future__ import annotations

import inspect
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from redis import RedisError
from redis.exceptions import TimeoutError as RedisTimeout
from rq import Callback
from slack_bolt import App

from bot.ids import ActionId, BlockId, CallbackId, record_id
from core import ports
from core.firms import access
from core.invitations import bulk_sending, clients, invites
from core.platform import db, tokens
from core.platform.errors import LedgerSyncError
from jobs import queues

from . import (
    bulk_commands,
    commands,
    connect_account,
    home,
    installations,
    middleware,
    progress,
    replies,
    threads,
    views,
)

log = logging.getLogger(__name__)
FIELDS = {"name": BlockId.NAME, "phone": BlockId.PHONE, "email": BlockId.CLIENT_EMAIL,
          "banks": BlockId.BANKS}


def register(app: App) -> None:
    app.use(middleware.resolve_actor)
    app.command("/ledgersync")(on_command)
    for action in (ActionId.RESEND, ActionId.REMIND, ActionId.REVOKE, ActionId.RECONNECT):
        app.action(str(action))(on_card_button)
    app.action(str(ActionId.RESEND_ANYWAY))(on_resend_anyway)
    app.action(str(ActionId.PICK))(on_pick)
    app.action(str(ActionId.MORE))(on_more)
    app.view(str(CallbackId.CLIENT_ADD))(on_client_add)
    app.view(str(CallbackId.IMPORT))(on_import)
    app.view(str(CallbackId.INVITE))(on_invite)
    app.event("message")(on_message)
    for action in (ActionId.BULK_CONFIRM, ActionId.BULK_CANCEL, ActionId.BULK_RETRY):
        app.action(str(action))(on_bulk_button)
    app.view(str(CallbackId.BULK_LIST))(on_bulk_list)
    installations.register(app)
    connect_account.register(app)
    home.register(app)


# --- the one way answers are worked out -------------------------------------------------


def failure(what: str) -> dict:
    ref = secrets.token_hex(3)
    log.exception("slack %s failed (ref %s)", what, ref)
    return views.error(f"Something went wrong with `{what}`. Quote ref {ref} to support.")


def worked_out(what: str, work: Callable[[], object]) -> tuple[object, LedgerSyncError | None]:
    """(the answer, None), or (the answer that says what went wrong, the problem)."""
    try:
        with db.connection():
            return work(), None
    except LedgerSyncError as problem:
        return views.refused(problem), problem
    except Exception as unexpected:  # noqa: BLE001 - the user gets one line and a reference
        return failure(what), LedgerSyncError(str(unexpected))


@dataclass(frozen=True)
class Then:
    """An answer to show first, and what to do once it is shown (start a bulk run)."""

    answer: dict
    then: Callable[[], None]


def _what(body: dict) -> str:
    if body.get("command"):
        return (body.get("text") or "help").split(" ")[0][:20] or "help"
    actions = body.get("actions") or [{}]
    return actions[0].get("action_id") or (body.get("view") or {}).get("callback_id") or "slack"


def _given(work: Callable, **available) -> dict:
    return {name: available[name] for name in inspect.signature(work).parameters}


def _run(work: Callable, body: dict, context) -> tuple[object, LedgerSyncError | None]:
    """`work` given what it asks for, through `worked_out`."""
    return worked_out(_what(body), lambda: work(**_given(work, **_inputs(body, context))))


def _inputs(body: dict, context) -> dict:
    actions = body.get("actions") or [None]
    return {"body": body, "context": context, "action": actions[0], "view": body.get("view"),
            "command": body if body.get("command") else None}


# --- handing the work to the workers ------------------------------------------------------

_deferred: dict[str, Callable[[dict, dict], None]] = {}


def _defer(name: str, answer: Callable[[dict, dict], None], in_request=None):
    """Register how `name` is answered (`answer(body, context)`), and return the
    check a listener makes first: True when the work went to the workers."""
    _deferred[name] = answer

    def handed_over(ack, body: dict) -> bool:
        if not ports.current().queued or (in_request is not None and in_request(body)):
            return False
        try:
            queues.queue("high", queues.quick()).enqueue(
                answer_later, name, _sealed(body), job_timeout=120, result_ttl=60,
                failure_ttl=86400, on_failure=Callback(answer_failed))
        except RedisError as problem:
            log.warning("slack %s: Redis refused the work (%s); answered busy", name,
                        type(problem).__name__)
            _busy(ack, body, maybe_done=isinstance(problem, RedisTimeout))
            return True
        ack()
        return True

    return handed_over


def _busy(ack, body: dict, maybe_done: bool) -> None:
    """Redis refused the work (nothing was done) or didn't answer in time (it may
    have been taken after all: say so, so nobody sends an invite twice)."""
    answer = views.busy(maybe_done)
    if body.get("command"):
        ack(response_type="ephemeral", **answer)
        return
    ack()
    replies.send(_response_url(body), {"response_type": "ephemeral",
                                       "replace_original": False, **answer})


def _response_url(body: dict) -> str:
    if body.get("response_url"):
        return body["response_url"]
    return _json((body.get("view") or {}).get("private_metadata")).get("response_url", "")


def _sealed(body: dict) -> str:
    """The request as it waits in Redis: sealed (its response URL can post for half an
    hour; its text may name a client)."""
    return tokens.seal(json.dumps(body))


def _opened(sealed) -> dict:
    opened = tokens.unseal(sealed) if isinstance(sealed, str) else None
    return _json(opened)


def answer_later(name: str, sealed: str) -> str:
    """The job (queue `high`): who is asking, resolved again, then the same answer
    the request would have given, posted to the response URL."""
    body = _opened(sealed)
    team = ((body.get("team") or {}).get("id") or body.get("team_id")
            or (body.get("user") or {}).get("team_id"))  # as Bolt's context finds it
    user = (body.get("user") or {}).get("id") or body.get("user_id")
    actor, problem = worked_out(_what(body), lambda: access.resolve(team, user))
    if problem is not None:  # the database is away: say so rather than nothing
        replies.send(_response_url(body), {"response_type": "ephemeral",
                                           "replace_original": False, **actor})
        return "failed"
    _deferred[name](body, {"actor": actor})
    return "answered"


def answer_failed(job, connection, *exc_info) -> None:
    """The answer job died (its worker too, RQ finds it abandoned): tell the person
    it may not have been done, rather than nothing."""
    body = _opened(job.args[1]) if len(job.args) > 1 else {}
    ref = secrets.token_hex(3)
    log.error("slack %s: the answer job failed (ref %s): %s", _what(body), ref,
              exc_info[0].__name__ if exc_info and exc_info[0] else "abandoned")
    replies.send(_response_url(body), {"response_type": "ephemeral", "replace_original": False,
                                       **views.error(f"Something went wrong with `{_what(body)}`. "
                                                     "It may have been done in part: check "
                                                     f"before trying again. Quote ref {ref} "
                                                     "to support.")})


# --- the decorators -------------------------------------------------------------------------


def answers(*, replace: bool, in_request=None):
    """A slash command or a button: ack at once and hand the work to the workers —
    or, without a job queue or for what may open a modal (`in_request(body)`), work
    it out here. Then open it (a modal) or post it — replacing the message the
    button is on (`replace`), or ephemeral. What went wrong is always a new
    ephemeral message."""

    def decorate(work):
        def answer(body: dict, context, client=None) -> None:
            reply, problem = _run(work, body, context)
            url = _response_url(body)
            if home.from_home(body):
                home.after_button(body, context["actor"], client,
                                  reply if problem is not None else None)
            elif isinstance(reply, Then):
                _respond(url, reply.answer, replace)
                worked_out(_what(body), reply.then)
            elif isinstance(reply, views.OpenModal) and client is not None:
                client.views_open(trigger_id=body["trigger_id"], view=reply.view)
            elif isinstance(reply, views.OpenModal):  # too late to open a form from a job
                _respond(url, views.error("That opens a form: run the command again."), False)
            else:
                _respond(url, reply, replace and problem is None)

        handed_over = _defer(work.__name__, answer, in_request)

        def listener(ack, body, context, client):
            if handed_over(ack, body):
                return
            ack()
            answer(body, context, client)

        listener.__name__ = listener.__qualname__ = work.__name__
        listener.__doc__ = work.__doc__
        return listener

    return decorate


def _respond(url: str, answer: dict, replace: bool) -> None:
    if replace:
        replies.send(url, {"replace_original": True, **answer})
    else:
        replies.send(url, {"replace_original": False, "response_type": "ephemeral", **answer})


def submitted(*, check_first: bool = False):
    """A modal's Submit. The answer goes to the conversation the modal was opened
    from (its `response_url`, in `private_metadata`). `check_first`: the work runs
    in the request, before the acknowledgement, so a problem with one field is
    shown under that field and the modal stays open; otherwise ack at once and the
    workers work it out."""

    def decorate(work):
        def answer(body: dict, context) -> None:
            reply, _ = _run(work, body, context)
            _reply(body["view"], reply)

        handed_over = _defer(work.__name__, answer, lambda body: check_first)

        def listener(ack, body, context, view):
            if handed_over(ack, body):
                return
            if not check_first:
                ack()
                answer(body, context)
                return
            reply, problem = _run(work, body, context)
            block = FIELDS.get(getattr(problem, "field", None) or "")
            if block is not None:
                ack(response_action="errors", errors={str(block): str(problem)[:150]})
                return
            ack()
            _reply(view, reply)

        listener.__name__ = listener.__qualname__ = work.__name__
        listener.__doc__ = work.__doc__
        return listener

    return decorate


def _reply(view, message: dict) -> None:
    url = _json(view.get("private_metadata")).get("response_url")
    replies.send(url, {"response_type": "ephemeral", **message})


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
    return commands.resend_anyway(_json(action.get("value")), context["actor"])


def _picked_opens_modal(body: dict) -> bool:
    value = _json(((body.get("actions") or [{}])[0]).get("value"))
    return value.get("cmd") == "invite" and not value.get("channel")


@answers(replace=True, in_request=_picked_opens_modal)
def on_pick(action, context):
    """A client picked among several matches: the command, for that client."""
    return commands.picked(_json(action.get("value")), context["actor"])


@answers(replace=True)
def on_more(action, context):
    return commands.more(_json(action.get("value")), context["actor"])


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
    client = actor.client(actor.firm, record_id(_json(view.get("private_metadata")).get("client")))
    banks = [b for b in _value(view, BlockId.BANKS).splitlines() if b.strip()]
    sent = invites.send(client, _value(view, BlockId.CHANNEL),
                        purpose=_value(view, BlockId.PURPOSE) or "connect",
                        banks=banks or None, by=actor.staff)
    return views.sent("Invited", client, sent.invite, sent.to)


@submitted()
def on_bulk_list(view, context):
    meta = _json(view.get("private_metadata"))
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

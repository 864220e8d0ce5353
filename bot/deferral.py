"""How a Slack request is answered: acknowledged at once, then worked out — on a
worker (an RQ job on `high`) when there is a job queue, else here — and the answer
posted to the request's response URL (or opened as a modal, or shown under a modal's
field). Every listener in `listeners.py` is a plain function that returns its answer;
`answers` (slash commands, buttons) and `submitted` (modals) do the rest, the same
way for all, through `worked_out`: a database connection for the work, a
`LedgerSyncError` turned into its one line, anything else into "Something went wrong
… quote ref …" (logged with the reference).

Why not Bolt's lazy listeners with an RQ-backed `LazyListenerRunner`: Bolt calls the
runner's `start` after the acknowledgement has been sent, so a Redis that refuses the
job can no longer be answered with "busy" in the acknowledgement; and its way to run
the lazy function elsewhere (`LambdaLazyListenerRunner`) replays the whole signed HTTP
request through the app — signature check included, which refuses it once its
timestamp is 5 minutes old, so an answer that waited in a busy queue would be lost —
and needs the raw request, response URL and all, kept in Redis. Here the job carries
only the request's body, sealed, and who is asking is resolved again on the worker.
The worker imports `bot.listeners` at start (`ledgersync worker`), which registers
every deferred answer by its listener's name.
"""

from __future__ import annotations

import html
import inspect
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from redis import RedisError
from redis.exceptions import TimeoutError as RedisTimeout
from rq import Callback

from bot.ids import ActionId, BlockId, CallbackId
from core import ports
from core.firms import access
from core.platform import config, db, tokens
from core.platform.errors import LedgerSyncError
from jobs import queues
from ops import metrics
from ops.context import since_received
from ops.errors import reference as error_reference

from . import commands, home, parse, replies, views

log = logging.getLogger(__name__)
FIELDS = {"name": BlockId.NAME, "phone": BlockId.PHONE, "email": BlockId.CLIENT_EMAIL,
          "banks": BlockId.BANKS}


# --- the one way answers are worked out -------------------------------------------------


def failure(what: str) -> dict:
    ref = error_reference()
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
            redis = queues.quick()
            if _behind(body, redis):
                metrics.SLACK_BUSY.labels(command_of(body), "queue").inc()
                _busy(ack, body, maybe_done=False)
                return True
            queues.queue("high", redis).enqueue(
                answer_later, name, _sealed(body), job_timeout=120, result_ttl=60,
                failure_ttl=86400, on_failure=Callback(answer_failed))
        except RedisError as problem:
            log.warning("slack %s: Redis refused the work (%s); answered busy", name,
                        type(problem).__name__)
            metrics.SLACK_BUSY.labels(command_of(body), "redis").inc()
            _busy(ack, body, maybe_done=isinstance(problem, RedisTimeout))
            return True
        ack()
        return True

    return handed_over


ANSWER_WITHIN = 8.0  # seconds after the request: later, a worker answers "busy" instead


def _behind(body: dict, redis) -> bool:
    """The answers are behind: an answer queued now would wait longer than BUSY_AFTER
    (for what would change something) or than ANSWER_WITHIN less a second (for what
    only reads) — by the oldest's wait, or by the line ahead at the rate the workers
    take it (`queues.backlog`). One round trip to Redis."""
    wait = queues.backlog("high", redis).wait
    if command_of(body) in commands.READ_ONLY:
        return wait > ANSWER_WITHIN - 1.0
    return wait > config.settings().busy_after.total_seconds()


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
    return json_of((body.get("view") or {}).get("private_metadata")).get("response_url", "")


def _sealed(body: dict) -> str:
    """The request as it waits in Redis: sealed (its response URL can post for half an
    hour; its text may name a client)."""
    return tokens.seal(json.dumps(body))


def _opened(sealed) -> dict:
    opened = tokens.unseal(sealed) if isinstance(sealed, str) else None
    return json_of(opened)


def answer_later(name: str, sealed: str) -> str:
    """The job (queue `high`): who is asking, resolved again, then the same answer
    the request would have given, posted to the response URL — on the worker's kept
    database connection (`db.kept`: opening one a job cost more than the answer)."""
    with db.kept_if_up():  # (the database away: `worked_out` says so)
        return _answer(name, _opened(sealed))


def _answer(name: str, body: dict) -> str:
    if (since_received(0.0) or 0.0) > ANSWER_WITHIN:
        return _too_late(body)
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


def _too_late(body: dict) -> str:
    """Picked up too late to answer within Slack users' patience: nothing is done, and
    the person is told so (a command that would change something is never done late)."""
    metrics.SLACK_BUSY.labels(command_of(body), "late").inc()
    replies.send(_response_url(body), {"response_type": "ephemeral",
                                       "replace_original": False, **views.busy(False)})
    return "too late: answered busy"


def answer_failed(job, connection, *exc_info) -> None:
    """The answer job died (its worker too, RQ finds it abandoned): tell the person
    it may not have been done, rather than nothing."""
    body = _opened(job.args[1]) if len(job.args) > 1 else {}
    ref = error_reference()
    log.error("slack %s: the answer job failed (ref %s): %s", _what(body), ref,
              exc_info[0].__name__ if exc_info and exc_info[0] else "abandoned")
    replies.send(_response_url(body), {"response_type": "ephemeral", "replace_original": False,
                                       **views.error(f"Something went wrong with `{_what(body)}`. "
                                                     "It may have been done in part: check "
                                                     f"before trying again. Quote ref {ref} "
                                                     "to support.")})


# --- how long it took ----------------------------------------------------------------------


def answered(body: dict) -> None:
    """The answer is posted or shown: how long since the request arrived (its arrival
    is carried into the job that worked it out), `ledgersync_slack_answer_seconds`."""
    waited = since_received()
    if waited is not None:
        metrics.SLACK_ANSWER.labels(command_of(body)).observe(waited)


def command_of(body) -> str:
    """What a request asks, in a few known names for metrics: the subcommand
    (`invite`), `button <id>`, `form <id>`, `event`; `other` for the rest."""
    if not isinstance(body, dict):
        return "other"
    if body.get("command"):
        name = parse.parse(str(body.get("text") or "")).name
        return name if name in commands.HANDLERS or name in {"help", "connect"} else "unknown"
    if body.get("type") == "event_callback":
        return "event"
    actions = body.get("actions")
    if isinstance(actions, list) and actions and isinstance(actions[0], dict):
        action = actions[0].get("action_id")
        return f"button {action}" if action in set(ActionId) else "other"
    view = body.get("view")
    callback = view.get("callback_id") if isinstance(view, dict) else None
    return f"form {callback}" if callback in set(CallbackId) else "other"


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
            answered(body)

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
            answered(body)

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
                ack(response_action="errors", errors={str(block): _under_field(problem)})
            else:
                ack()
                _reply(view, reply)
            answered(body)

        listener.__name__ = listener.__qualname__ = work.__name__
        listener.__doc__ = work.__doc__
        return listener

    return decorate


def _under_field(problem: LedgerSyncError) -> str:
    """The line shown under a form's field: the problem, and the command that fixes it
    (plain text there: Slack shows no formatting under a field)."""
    fixes = [html.unescape(f.strip("`")) for f in views.fix_commands(problem)]
    return (str(problem) + (f": {fixes[0]}" if fixes else ""))[:150]


def _reply(view, message: dict) -> None:
    url = json_of(view.get("private_metadata")).get("response_url")
    replies.send(url, {"response_type": "ephemeral", **message})


def json_of(value) -> dict:
    try:
        data = json.loads(value or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}



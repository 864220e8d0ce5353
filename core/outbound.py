"""The one port every outgoing SMS and email goes through.

1. `queue()` writes the message (status `pending`) in the caller's transaction,
   with a `dedupe_key` that makes a second copy impossible.
2. `dispatch()` hands it on: by default delivered at once; when the jobs layer is
   installed, enqueued for a worker.
3. `deliver()` claims it (`pending` → `sending`, a conditional update only one
   caller wins), checks opt-outs once more, and calls the sender that
   configuration chooses (`Settings.sms_backend` / `email_backend`).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

from peewee import IntegrityError

from . import clock, notices, optouts, tokens
from .config import settings
from .db import database
from .models import Client, Message
from .templates import Rendered

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8
CLIENT_KINDS = {"invite", "reminder", "auto_reminder", "reply"}


@dataclass(frozen=True)
class SendResult:
    status: str  # queued | sent | delivered | failed
    provider: str
    provider_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    retry: bool = False  # a transient failure: leave pending and try again
    # The address itself can't take messages: OPTED_OUT (the recipient opted out
    # with the provider), or plain words such as "not a mobile number".
    address_problem: str | None = None


OPTED_OUT = "opted out"


class Sender(Protocol):
    def send(self, message: Message) -> SendResult: ...

    def find_sent(self, message: Message) -> SendResult | None:
        """After a crash mid-send: did the provider take it? None when it did not."""


class TransientFailure(Exception):
    """Delivery should be tried again later (the job retries with backoff)."""


def queue(*, firm, channel: str, kind: str, to_addr: str, rendered: Rendered, client=None,
          invite=None, dedupe_key: str | None = None) -> Message | None:
    """Write an outgoing message; None when one with the same `dedupe_key` exists."""
    try:
        with database.atomic():
            return Message.create(
                firm=firm, client=client, invite=invite, channel=channel, kind=kind,
                to_addr=to_addr, subject=rendered.subject, body=rendered.body,
                html=rendered.html, segments=rendered.segments, encoding=rendered.encoding,
                dedupe_key=dedupe_key,
            )
    except IntegrityError:
        return None


def deliver_now(message_ids: list[int]) -> None:
    for message_id in message_ids:
        try:
            deliver(message_id)
        except TransientFailure:
            log.warning("message %s: delivery will be retried", message_id)


_dispatcher: Callable[[list[int]], None] = deliver_now


def set_dispatcher(dispatcher: Callable[[list[int]], None] | None) -> None:
    global _dispatcher
    _dispatcher = dispatcher or deliver_now


_held: ContextVar[list[int] | None] = ContextVar("held", default=None)


@contextmanager
def held(into: list[int]):
    """Collect what would be dispatched instead (the caller delivers it after its
    transaction commits, at its own pace)."""
    token = _held.set(into)
    try:
        yield into
    finally:
        _held.reset(token)


def release(message_ids: list[int]) -> None:
    """Dispatch what `held` collected, once the caller's transaction has committed."""
    if message_ids:
        _dispatcher(list(message_ids))


def dispatch(*messages: Message | None) -> None:
    ids = [m.id for m in messages if m is not None]
    if not ids:
        return
    collecting = _held.get()
    if collecting is not None:
        collecting.extend(ids)
    else:
        _dispatcher(ids)


def deliver(message_id: int) -> Message | None:
    """Send one pending message exactly once; safe to call any number of times."""
    now = clock.now()
    claimed = (
        Message.update(status="sending", attempts=Message.attempts + 1, updated_at=now)
        .where(Message.id == message_id, Message.status == "pending")
        .execute()
    )
    message = Message.get_or_none(Message.id == message_id)
    if not claimed or message is None:
        return message
    if message.channel != "slack" and optouts.is_opted_out(message.to_addr):
        return _finish(message, SendResult("canceled", "none", error_message="opted out"))
    if text_of(message) is None:
        return _finish(message, SendResult("failed", "none", error_message=LINK_LOST))
    if message.attempts > MAX_ATTEMPTS:
        return _finish(message, SendResult("failed", "none", error_message=(
            f"gave up after {MAX_ATTEMPTS} tries ({message.error_message or 'no answer'})")))
    try:
        result = sender_for(message.channel).send(message)
    except Exception as exc:
        _release(message, f"{type(exc).__name__}")
        raise TransientFailure(str(exc)) from exc
    if result.retry:
        _release(message, result.error_message or result.error_code or "temporary failure")
        raise TransientFailure(result.error_message or "temporary failure")
    return _finish(message, result)


LINK_LOST = "its link can't be rebuilt (the encryption keys changed); send a new one with resend"


def text_of(message: Message) -> tuple[str, str | None] | None:
    """What the recipient reads: the stored body and HTML with the link rebuilt
    from the invite's sealed token (the database keeps it masked). None when the
    link can't be rebuilt."""
    if getattr(message, "_text", None) is None:
        body, html = message.body, message.html
        if message.invite_id is not None and "/i/" in body:
            token = tokens.unseal(message.invite.token_sealed)
            if token is None:
                return None
            body, html = tokens.unmask_link(body, token), tokens.unmask_link(html, token)
        message._text = (body, html)
    return message._text


def _release(message: Message, why: str) -> None:
    Message.update(status="pending", error_message=why[:300], updated_at=clock.now()).where(
        Message.id == message.id, Message.status == "sending"
    ).execute()


def recover(message_id: int) -> Message | None:
    """A message stuck in `sending` (its worker died mid-send): ask the provider
    whether it went out; record that, or make it `pending` again to be re-sent."""
    message = Message.get_or_none(Message.id == message_id, Message.status == "sending")
    if message is None:
        return None
    sender = sender_for(message.channel)
    found = sender.find_sent(message) if hasattr(sender, "find_sent") else None
    if found is not None:
        return _finish(message, found)
    _release(message, "interrupted while sending")
    return message.refreshed()


def _finish(message: Message, result: SendResult) -> Message:
    now = clock.now()
    message.status = result.status
    message.provider = result.provider
    message.provider_id = result.provider_id
    message.error_code = result.error_code
    message.error_message = (result.error_message or "")[:300] or None
    message.sent_at = now if result.status not in {"failed", "canceled"} else None
    message.updated_at = now
    message.save()
    if message.provider_id:
        from . import deliveries  # (imported here: deliveries imports this module)

        deliveries.apply_early(message)
    if result.address_problem:
        address_problem(message, result.address_problem)
    if result.status in {"failed", "undelivered"} and message.kind in CLIENT_KINDS:
        dispatch(notices.delivery_failed(message))
    return message


def address_problem(message: Message, problem: str) -> None:
    """The provider says the address can't take messages: remember it, so nothing
    more is tried (an opt-out) or staff see why and fix the number."""
    client = message.client
    if problem == OPTED_OUT:
        optouts.opt_out(message.to_addr, f"{message.provider or 'provider'} refused",
                        firm=message.firm_id, client=client)
    elif client is not None and message.channel == "sms" and client.phone == message.to_addr:
        Client.update(phone_problem=problem[:200], updated_at=clock.now()).where(
            Client.id == client.id).execute()


_senders: dict[str, Sender] = {}


def sender_for(channel: str) -> Sender:
    config = settings()
    path = {"sms": config.sms_backend, "email": config.email_backend,
            "slack": config.slack_backend}[channel]
    if path not in _senders:
        module, _, name = path.partition(":")
        _senders[path] = getattr(importlib.import_module(module), name)()
    return _senders[path]


def reset_senders() -> None:
    """Forget built senders (after settings change)."""
    _senders.clear()

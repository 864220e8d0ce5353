"""The front door of every outgoing SMS, email and firm notice, and the port
their senders plug into.

1. `write()` records the message (status `pending`) in the caller's transaction,
   with a `dedupe_key` that makes a second copy impossible.
2. `dispatch()` hands it on once that transaction has committed, to the
   `dispatcher` port (`core.ports`: the job queue, or `deliveries.deliver_now`);
   inside `held()` the ids are collected for the caller to dispatch after its own
   commit (`dispatch_held`).
3. `core.messaging.deliveries` sends it through the `Sender` that `sender_for` gives for
   its channel (the `senders` port) and records what came of it.

The database keeps a message's link masked; `text_of` rebuilds what the
recipient reads at the moment a sender sends it.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

from peewee import IntegrityError

from core import ports
from core.platform import db, sealed, tokens
from core.platform.config import settings
from core.platform.db import database
from core.records import Kind, Message

from .templates import Rendered

CLIENT_KINDS = frozenset({Kind.INVITE, Kind.REMINDER, Kind.AUTO_REMINDER, Kind.REPLY})
OPTED_OUT = "opted out"  # the address problem of a recipient who opted out with the provider


@dataclass(frozen=True)
class SendResult:
    status: str  # a Status: queued | sent | delivered | failed | canceled
    provider: str
    provider_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    retry: bool = False  # a transient failure: leave pending and try again
    # The address itself can't take messages: OPTED_OUT (the recipient opted out
    # with the provider), or plain words such as "not a mobile number".
    address_problem: str | None = None


class Sender(ports.Sender, Protocol):
    def send(self, message: Message) -> SendResult: ...

    def find_sent(self, message: Message) -> SendResult | None:
        """After a crash mid-send: did the provider take it? None when it did not."""


class TransientFailure(Exception):
    """Delivery should be tried again later (the job retries with backoff)."""


def write(*, firm, channel: str, kind: str, to_addr: str, rendered: Rendered, client=None,
          invite=None, dedupe_key: str | None = None, strict: bool = False) -> Message | None:
    """Record an outgoing message; None when one with the same `dedupe_key` exists —
    or, `strict`, IntegrityError (for a caller whose transaction is lost then anyway:
    no savepoint around it)."""
    fields = dict(firm=firm, client=client, invite=invite, channel=channel, kind=kind,
                  to_addr=to_addr, subject=rendered.subject, body=rendered.body,
                  html=rendered.html, segments=rendered.segments, encoding=rendered.encoding,
                  dedupe_key=dedupe_key)
    if strict:
        return db.create(Message, **fields)
    try:
        with database.atomic():
            return db.create(Message, **fields)
    except IntegrityError:
        return None


# --- handing messages on --------------------------------------------------------------

def _dispatch_ids(ids: list[int]) -> None:
    dispatcher = ports.current().dispatcher
    if dispatcher is None:
        raise RuntimeError("outbound has no dispatcher: start the process with wiring.wire()")
    dispatcher(ids)


_held: ContextVar[list[int] | None] = ContextVar("held", default=None)


@contextmanager
def held(into: list[int]):
    """Collect what would be dispatched instead (the caller dispatches it after its
    transaction commits, with `dispatch_held`, or delivers it at its own pace)."""
    token = _held.set(into)
    try:
        yield into
    finally:
        _held.reset(token)


def dispatch_held(message_ids: list[int]) -> None:
    """Dispatch what `held` collected, once the caller's transaction has committed."""
    if message_ids:
        _dispatch_ids(list(message_ids))


def dispatch(*messages: Message | None) -> None:
    ids = [m.id for m in messages if m is not None]
    if not ids:
        return
    collecting = _held.get()
    if collecting is not None:
        collecting.extend(ids)
    else:
        _dispatch_ids(ids)


# --- senders ----------------------------------------------------------------------------

_senders: dict[str, Sender] = {}  # built once a channel, by the `senders` port in force
_built_by: list = [None]


def sender_for(channel: str) -> Sender:
    choose = ports.current().senders
    if choose is None:
        raise RuntimeError("outbound has no senders: start the process with wiring.wire()")
    if _built_by[0] is not choose:
        reset_senders()
        _built_by[0] = choose
    if channel not in _senders:
        _senders[channel] = choose(channel, settings())
    return _senders[channel]


def reset_senders() -> None:
    """Forget built senders (after settings change)."""
    _senders.clear()


# --- what the recipient reads -------------------------------------------------------------

LINK_LOST = "its link can't be rebuilt (the encryption keys changed); send a new one with resend"


def text_of(message: Message) -> tuple[str, str | None] | None:
    """What the recipient reads: the stored body and HTML with the link rebuilt
    from the invite's sealed token (the database keeps it masked). None when the
    link can't be rebuilt."""
    if getattr(message, "_text", None) is None:
        body, html = message.body, message.html
        if message.invite_id is not None and message.kind in CLIENT_KINDS and "/i/" in body:
            token = tokens.unseal(message.invite.token_sealed)
            if token is None:
                return None
            body, html = tokens.unmask_link(body, token), tokens.unmask_link(html, token)
        # A one-time sign-in code is stored sealed (core/platform/sealed.py): opened here too.
        body, html, had_html = sealed.opened(body), sealed.opened(html), html is not None
        if body is None or (had_html and html is None):
            return None
        message._text = (body, html)
    return message._text

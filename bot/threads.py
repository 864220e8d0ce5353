"""A client's texts land in one thread per client in the firm's channel; a staff
member's reply in that thread is texted to the client (core.invitations.client_texts)."""

from __future__ import annotations

from core.firms.access import Actor
from core.invitations import client_texts
from core.platform.errors import Refused
from core.records import ClientThread, Message

from . import parse


def is_thread_reply(event: dict) -> bool:
    """A person's reply inside a thread (not the thread's first message, not a bot,
    not an edit or a join)."""
    return bool(event.get("thread_ts") and event.get("thread_ts") != event.get("ts")
                and not event.get("subtype") and not event.get("bot_id"))


def client_thread(event: dict) -> ClientThread | None:
    return client_texts.thread_at(event.get("channel"), event.get("thread_ts"))


def answer(actor: Actor, thread: ClientThread, event: dict) -> Message | None:
    """Text the reply to the thread's client, with every check the firm's other
    actions get: who is writing, their role, and their firm."""
    actor.require("reply")
    client = actor.client(actor.firm, thread.client_id)
    text = parse.plain_text(event.get("text", ""))
    if not text.strip() and event.get("files"):
        raise Refused("Not texted: files can't be sent by text. Write the answer in words.")
    return client_texts.staff_reply(actor.staff, client, text,
                               ref=f"{event.get('channel')}-{event.get('ts')}")

"""`/ledgersync <subcommand>`: parse, call core, pick a view. No Slack I/O here:
each function returns a message (a dict for `respond`) or an `OpenModal`."""

from __future__ import annotations

import json

from bot.ids import record_id
from bot.views import OpenModal
from core.banking import reconnects
from core.firms import access, firms
from core.firms.access import Actor
from core.invitations import clients, invites
from core.platform import clock
from core.platform.errors import Ambiguous, InvalidInput, LedgerSyncError
from core.records import Client, Firm
from core.reports import doctor, status

from . import (
    bank_commands,
    bulk_commands,
    connect_account,
    firm_commands,
    funnel_commands,
    notices,
    parse,
    staff_commands,
    views,
)

MODAL_COMMANDS = {"client add", "client edit", "import"}


def opens_modal(text: str) -> bool:
    """Whether the command may answer with a modal, which must open within 3 s of
    the request (its `trigger_id`): those are answered in the request; the rest on
    the workers. From the words alone, without the database."""
    command = parse.parse(text)
    if command.name == "invite-all":
        return [w.lower() for w in command.words] == ["list"]
    return command.name in MODAL_COMMANDS or (command.name == "invite" and not command.channel)


def run(text: str, actor: Actor, meta: dict) -> dict | OpenModal:
    command = parse.parse(text)
    if command.name == "connect":
        return connect_account.connect_message(meta.get("team_id"), meta.get("user_id"))
    if command.name == "help":
        return views.help_message()
    handler = HANDLERS.get(command.name)
    if handler is None:
        return views.help_message(unknown=command.name[:40])
    try:
        return handler(command, actor, meta)
    except Ambiguous as many:
        extra = {k: v for k, v in (("channel", command.channel), ("purpose", command.purpose),
                                   ("firm", command.firm)) if v}
        return views.candidates(str(many), many.candidates, command.name, extra)
    except LedgerSyncError as problem:
        return views.refused(problem)


def _client(command: parse.Command, actor: Actor, action: str) -> tuple[Firm, Client]:
    actor.require(action)
    firm = actor.firm_for(command.firm)
    if not command.target:
        raise InvalidInput(f"Which client? `/ledgersync {command.name} <name, phone or email>`")
    client = clients.find(firm, command.target)
    access.looked_up(actor, firm, f"{command.name} {command.target}")
    return firm, client


def disconnect(command, actor: Actor, meta) -> dict:
    if not access.disconnect(actor):
        return views.error("Your Slack user is not connected to LedgerSync.")
    return views.message("Disconnected. Run /ledgersync connect to connect again.")


def list_clients(command, actor: Actor, meta, offset: int = 0) -> dict:
    actor.require("clients")
    firm = actor.firm_for(command.firm)
    query = command.target
    everyone = clients.search(firm, query, limit=10_000)
    access.looked_up(actor, firm, f"clients {query}")
    return views.clients_list(everyone[offset:offset + views.PAGE], len(everyone), offset, query)


def client_add(command, actor: Actor, meta) -> OpenModal:
    actor.require("client_add")
    return OpenModal(views.client_add_modal(json.dumps(meta)))


def client_edit(command, actor: Actor, meta) -> OpenModal:
    """`/ledgersync client edit <client>`: the client's details in a form to change."""
    _, client = _client(command, actor, "client_add")
    return OpenModal(views.client_edit_modal(client, json.dumps({**meta, "client": client.id})))


def import_clients(command, actor: Actor, meta) -> OpenModal:
    actor.require("import")
    return OpenModal(views.import_modal(json.dumps(meta)))


def invite(command, actor: Actor, meta, client: Client | None = None) -> dict | OpenModal:
    if client is None:
        _, client = _client(command, actor, "invite")
    channel = command.channel
    if channel is None and client.phone and client.email:
        return OpenModal(views.invite_modal(client, json.dumps({**meta, "client": client.id})))
    sent = invites.send(client, channel, purpose=command.purpose or "connect", by=actor.staff)
    return views.sent("Invited", client, sent.invite, sent.to)


def resend(command, actor: Actor, meta, client: Client | None = None) -> dict:
    if client is None:
        _, client = _client(command, actor, "resend")
    sent = invites.resend(client, command.channel, by=actor.staff, checked=command.force)
    return views.sent("Sent a new link to", client, sent.invite, sent.to)


def resend_anyway(value: dict, actor: Actor) -> dict:
    """*Send anyway* after the warning that someone said the address isn't the
    client's: staff checked it with them, so the link goes to it."""
    actor.require("resend")
    client = actor.client(actor.firm_for(None), record_id(value.get("client")))
    sent = invites.resend(client, value.get("channel"), purpose=value.get("purpose"),
                          by=actor.staff, checked=True)
    return views.sent("Sent a new link to", client, sent.invite, sent.to)


def remind(command, actor: Actor, meta, client: Client | None = None) -> dict:
    if client is None:
        _, client = _client(command, actor, "remind")
    sent = invites.remind(client, by=actor.staff, force=command.force)
    return views.sent("Reminded", client, sent.invite, sent.to)


def revoke(command, actor: Actor, meta, client: Client | None = None) -> dict:
    if client is None:
        _, client = _client(command, actor, "revoke")
    revoked = invites.revoke(client, by=actor.staff)
    return views.message(f"Revoked {client.name}'s access", [views.section(
        f":no_entry: Revoked *{views.esc(client.name)}*'s access: {revoked}.")])


def show_status(command, actor: Actor, meta, client: Client | None = None) -> dict:
    if client is None:
        _, client = _client(command, actor, "status")
    return views.status_card(status.for_client(client), read_only=not actor.may("resend"))


def pending(command, actor: Actor, meta, offset: int = 0) -> dict:
    actor.require("pending")
    firm = actor.firm_for(command.firm)
    access.looked_up(actor, firm, "pending")
    now = clock.now()
    rows = invites.pending(firm, now)
    return views.pending_list(rows[offset:offset + views.PAGE], now, offset, len(rows))


def notify(command, actor: Actor, meta) -> dict:
    """Choose the notices channel, once a test post there went in (no post, no change)."""
    actor.require("notify")
    ref = parse.slack_channel(command.rest)
    if ref is None:
        raise InvalidInput("Name a channel: `/ledgersync notify #tax-clients`; or "
                           + views.NOTIFY_HOW)
    tried = notices.try_channel(ref, actor.firm)
    if tried.refused:
        return views.notify_refused(tried.refused, tried.channel, ref.name)
    firms.set_notify_channel(actor.firm, tried.channel, actor=actor.label)
    return views.notify_set(tried.channel)


def run_doctor(command, actor: Actor, meta) -> dict:
    actor.require("doctor")
    firm = actor.firm_for(command.firm)
    access.looked_up(actor, firm, "doctor")
    return views.doctor(firm.name, doctor.run(firm))


HANDLERS = {
    "disconnect": disconnect, "clients": list_clients, "client add": client_add,
    "client edit": client_edit,
    "import": import_clients, "invite": invite, "resend": resend, "remind": remind,
    "revoke": revoke, "status": show_status, "pending": pending, "notify": notify,
    "doctor": run_doctor, "role": staff_commands.role, "staff": staff_commands.staff,
    "invite-all": bulk_commands.invite_all, "bulk": bulk_commands.show,
    "accounts": bank_commands.show_accounts, "transactions": bank_commands.show_transactions,
    "api-tokens": bank_commands.api_tokens_command, "auto-reconnect": bank_commands.auto_reconnect,
    "firm": firm_commands.firm, "language": firm_commands.language,
    "funnel": funnel_commands.funnel, "support": funnel_commands.support,
}

# What only reads: when LedgerSync is behind, these still queue for their answer, while
# a command that changes something is answered "busy" at once (bot/deferral.py).
READ_ONLY = {"help", "status", "clients", "pending", "doctor", "accounts", "transactions",
             "bulk", "funnel", "support", "button more"}

# What a button on a status card needs: the same permission as its command.
CLIENT_ACTIONS = {"resend": "resend", "remind": "remind", "revoke": "revoke",
                  "ask_reconnect": "reconnect"}


def on_client(action: str, client_id: int, actor: Actor) -> dict:
    """A button on a status card: check, act, and return the updated card."""
    actor.require(CLIENT_ACTIONS[action])
    client = actor.client(actor.firm_for(None), record_id(client_id))
    if action == "resend":
        invites.resend(client, by=actor.staff)
    elif action == "remind":
        invites.remind(client, by=actor.staff)
    elif action == "revoke":
        invites.revoke(client, by=actor.staff)
    else:
        reconnects.ask(client, by=actor.staff)
    return views.status_card(status.for_client(client))


def picked(value: dict, actor: Actor) -> dict | OpenModal:
    """A 'Pick' button after an ambiguous name: run the command for that client."""
    name = value.get("cmd", "")
    handler = {"invite": invite, "resend": resend, "remind": remind, "revoke": revoke,
               "status": show_status}.get(name)
    if handler is None:
        return views.error("That choice has expired; run the command again.")
    command = parse.Command(name=name, channel=value.get("channel"),
                            purpose=value.get("purpose"), firm=value.get("firm"))
    actor.require("status" if name == "status" else name)
    client = actor.client(actor.firm_for(command.firm), record_id(value.get("client")))
    return handler(command, actor, {}, client=client)


def more(value: dict, actor: Actor) -> dict:
    if value.get("cmd") == "transactions":  # bank_commands' pages
        return bank_commands.more(value, actor)
    command = parse.Command(name=value.get("cmd", ""), words=[value.get("q", "")],
                            firm=value.get("firm"))
    offset = record_id(value.get("offset", 0))
    if command.name == "pending":
        return pending(command, actor, {}, offset=offset)
    return list_clients(command, actor, {}, offset=offset)

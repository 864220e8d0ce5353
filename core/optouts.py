"""Opt-outs: an address that said STOP gets nothing more until it opts back in.

Checked when a message is decided (invite, resend, remind) and again just before
it is delivered, so a STOP that arrives in between still wins.
"""

from __future__ import annotations

from . import clock, events, notices, outbound
from .models import OptOut


def is_opted_out(address: str | None) -> bool:
    if not address:
        return False
    row = OptOut.get_or_none(OptOut.address == address)
    return bool(row and row.opted_out)


def opt_out(address: str, source: str, firm=None, client=None) -> bool:
    """Record an opt-out; True when it changed anything."""
    return _set(address, True, source, firm, client)


def opt_in(address: str, source: str, firm=None, client=None) -> bool:
    return _set(address, False, source, firm, client)


def _set(address: str, value: bool, source: str, firm, client) -> bool:
    now = clock.now()
    changed = (
        OptOut.update(opted_out=value, source=source, changed_at=now)
        .where(OptOut.address == address, OptOut.opted_out != value)
        .execute()
    )
    if not changed and value and OptOut.get_or_none(OptOut.address == address) is None:
        OptOut.insert(address=address, opted_out=True, source=source, changed_at=now)\
            .on_conflict_ignore().execute()
        changed = 1
    if changed:
        kind = "optout.stopped" if value else "optout.resumed"
        event = events.record(kind, firm=firm, client=client, actor="client", source=source)
        if client is not None:
            _tell_firm(client, value, event.id)
    return bool(changed)


def _tell_firm(client, stopped: bool, event_id: int) -> None:
    text = (f"{client.name} opted out of messages: nothing more is sent to them until they "
            "reply START." if stopped else f"{client.name} opted back in to messages.")
    outbound.dispatch(notices.write(client.firm_id, "opted_out" if stopped else "opted_in", text,
                                    client=client, dedupe_key=f"notice-optout-{event_id}"))

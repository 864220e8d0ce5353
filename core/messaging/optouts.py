"""Opt-outs: an address that said STOP gets nothing more until it opts back in.

Checked when a message is decided (invite, resend, remind) and again just before
it is delivered, so a STOP that arrives in between still wins.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from core.platform import clock
from core.platform.config import Settings, settings
from core.platform.db import Param, Prepared
from core.records import OptOut, events

from . import notices, outbound

_OPTED_OUT = Prepared(OptOut.select(OptOut.opted_out).where(OptOut.address == Param("address"))
                      .limit(1).tuples())


def is_opted_out(address: str | None) -> bool:
    if not address:
        return False
    row = _OPTED_OUT.first(address=address)
    return bool(row and row[0])


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


# --- unsubscribing from email in one click (List-Unsubscribe, RFC 8058) ---------------
# The link names the address and carries an HMAC of it under SECRET_KEY: only the
# recipient (who got it in an email) can opt that address out, and nothing else.

UNSUBSCRIBE_PATH = "/unsubscribe/"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _mac(address: str, key: str) -> str:
    return _b64(hmac.new(key.encode(), b"unsubscribe\0" + address.encode(),
                         hashlib.sha256).digest()[:16])


def unsubscribe_token(address: str, config: Settings | None = None) -> str:
    config = config or settings()
    return f"{_b64(address.encode())}.{_mac(address, config.secret_key)}"


def unsubscribe_url(address: str, config: Settings | None = None) -> str:
    config = config or settings()
    return f"{config.public_base_url}{UNSUBSCRIBE_PATH}{unsubscribe_token(address, config)}"


def address_of_unsubscribe(token: str, config: Settings | None = None) -> str | None:
    """The address an unsubscribe token was made for; None for a forged or broken one,
    odd characters included. (Tokens made under a fallback SECRET_KEY still work after
    a rotation.)"""
    config = config or settings()
    encoded, _, mac = token.partition(".")
    if not encoded or not mac or len(token) > 600:
        return None
    try:
        address = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, ValueError):
        return None
    keys = (config.secret_key, *config.secret_key_fallbacks)
    given = mac.encode()  # bytes: compare_digest refuses a str that isn't ASCII
    if any(hmac.compare_digest(given, _mac(address, key).encode()) for key in keys if key):
        return address
    return None

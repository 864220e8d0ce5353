"""The append-only event log: every change of state is recorded here."""

from __future__ import annotations

from . import db
from .models import Event


def record(kind: str, *, firm=None, client=None, invite=None, actor: str = "system", **detail):
    """Append one event; `actor` is "staff:<id>", "support:<id>", "client" or "system"."""
    if client is not None and firm is None:
        firm = client.firm_id
    return db.create(
        Event,
        kind=kind, firm=firm, client=client, invite=invite, actor=actor, detail=detail
    )


def actor_of(staff) -> str:
    return f"staff:{staff.id}" if staff is not None else "system"

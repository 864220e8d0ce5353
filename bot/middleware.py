"""Resolve who is asking once per request — the firm (from the workspace), the
staff member and their role, or LedgerSync support — so no listener can forget."""

from __future__ import annotations

from core.firms import access
from core.platform import db


def resolve_actor(context, body, next):
    team = context.team_id or (body.get("team") or {}).get("id") or body.get("team_id")
    user = context.user_id or (body.get("user") or {}).get("id") or body.get("user_id")
    with db.connection():
        context["actor"] = access.resolve(team, user)
    next()

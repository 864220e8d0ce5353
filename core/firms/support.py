"""LedgerSync's own support team: read-only over every firm, from its own Slack
workspace (`access.resolve` finds them by workspace id + user id)."""

from __future__ import annotations

import re

from peewee import fn

from core.platform import names
from core.platform.db import database
from core.platform.errors import InvalidInput, NotFound, Refused
from core.records import SupportStaff, events

from . import access, firms

SLACK_TEAM = re.compile(r"[TE][A-Z0-9]{2,31}")
SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,31}")


def add(email: str, *, name: str = "", slack_team_id: str | None = None,
        slack_user_id: str | None = None, actor: str = "system") -> SupportStaff:
    """A member of LedgerSync support, linked to their Slack user when both ids are given."""
    email = names.normalize_email(email).lower()
    name = firms.person_name(name)
    team, user = _slack_ids(slack_team_id, slack_user_id)
    with database.atomic():
        if SupportStaff.select().where(fn.LOWER(SupportStaff.email) == email).exists():
            raise Refused(f"{email} is already on LedgerSync support; remove them first "
                          "to change their Slack user")
        if team and access.slack_user_taken(team, user):
            raise Refused(f"Slack user {user} in {team} is already connected to a LedgerSync "
                          "account; support needs a Slack user of its own")
        member = SupportStaff.create(email=email, name=name, slack_team_id=team,
                                     slack_user_id=user)
        events.record("support.added", actor=actor, email=email, slack_team_id=team,
                      slack_user_id=user)
    return member


def _slack_ids(team: str | None, user: str | None) -> tuple[str | None, str | None]:
    team, user = (team or "").strip().upper(), (user or "").strip().upper()
    if bool(team) != bool(user):
        raise InvalidInput("A Slack link needs both the workspace id and the user id")
    if team and not SLACK_TEAM.fullmatch(team):
        raise InvalidInput(f"'{team[:40]}' is not a Slack workspace id (like T0123ABCD)")
    if user and not SLACK_USER.fullmatch(user):
        raise InvalidInput(f"'{user[:40]}' is not a Slack user id (like U0123ABCD)")
    return team or None, user or None


def members() -> list[SupportStaff]:
    return list(SupportStaff.select().order_by(SupportStaff.email))


def remove(email: str, *, actor: str = "system") -> SupportStaff:
    """Take someone off support: their Slack user no longer sees any firm."""
    key = (email or "").strip().lower()
    with database.atomic():
        member = SupportStaff.get_or_none(fn.LOWER(SupportStaff.email) == key)
        if member is None:
            raise NotFound(f"No one on LedgerSync support signs in as {key[:80]}")
        member.delete_instance()
        events.record("support.removed", actor=actor, email=member.email)
    return member

"""The Slack workspaces the app is installed in (by OAuth, one per firm), and their
bot tokens: sealed at rest under ENCRYPTION_KEYS, opened only to make a call.

A workspace's row is replaced by a reinstall, its token by a rotation, and it is
deleted when the workspace removes the app or revokes its token: from then on,
nothing is sent there (`find` answers None) and `doctor` says why.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta

from core.platform import clock, tokens
from core.platform.db import is_sqlite
from core.records import Event, Firm, OAuthState, SlackInstall, events


@dataclass
class Workspace:
    """One installation as the Slack SDK describes it, tokens in clear (in memory only)."""

    client_id: str
    team_id: str | None
    enterprise_id: str | None = None
    is_enterprise_install: bool = False
    app_id: str | None = None
    team_name: str | None = None
    enterprise_name: str | None = None
    bot_id: str | None = None
    bot_user_id: str | None = None
    bot_scopes: str = ""
    bot_token: str = field(default="", repr=False)
    bot_refresh_token: str | None = field(default=None, repr=False)
    bot_token_expires_at: datetime | None = None
    installer_user_id: str | None = None
    installed_at: datetime | None = None


SEALED = {"bot_token": "bot_token_sealed", "bot_refresh_token": "bot_refresh_token_sealed"}


def key_of(client_id: str, enterprise_id: str | None, team_id: str | None,
           is_enterprise_install: bool = False) -> str:
    """One row per workspace (or per organisation, for an org-wide install)."""
    team = "-" if is_enterprise_install or not team_id else team_id
    return f"{client_id}:{enterprise_id or '-'}:{team}"


def save(space: Workspace) -> None:
    """Store an installation (new, reinstalled or rotated): one row per workspace."""
    row = _columns(space)
    SlackInstall.insert(**row).on_conflict(
        conflict_target=[SlackInstall.key],
        update={k: v for k, v in row.items() if k != "key"}).execute()
    if space.team_id:
        events.record("slack.installed", firm=_firm_of(space.team_id), actor="slack",
                      team=space.team_id)


def _columns(space: Workspace) -> dict:
    row = {f.name: getattr(space, f.name) for f in fields(space) if f.name not in SEALED
           and f.name not in ("installer_user_id", "installed_at")}
    row["team_id"] = None if space.is_enterprise_install else space.team_id
    row["key"] = key_of(space.client_id, space.enterprise_id, space.team_id,
                        space.is_enterprise_install)
    row["bot_token_sealed"] = tokens.seal(space.bot_token)
    refresh = space.bot_refresh_token
    row["bot_refresh_token_sealed"] = tokens.seal(refresh) if refresh else None
    row["installer_user_id"] = space.installer_user_id
    row["installed_at"] = space.installed_at or clock.now()
    row["updated_at"] = clock.now()
    return row


def rotated(space: Workspace, token: str, refresh_token: str | None,
            expires_at: datetime) -> None:
    """A rotating token refreshed: the new pair replaces the old."""
    SlackInstall.update(
        bot_token_sealed=tokens.seal(token),
        bot_refresh_token_sealed=tokens.seal(refresh_token) if refresh_token else None,
        bot_token_expires_at=expires_at, updated_at=clock.now(),
    ).where(SlackInstall.key == key_of(space.client_id, space.enterprise_id, space.team_id,
                                       space.is_enterprise_install)).execute()


def find(client_id: str, team_id: str | None, enterprise_id: str | None = None,
         is_enterprise_install: bool = False) -> Workspace | None:
    """The workspace's installation (an org-wide one when the team has none)."""
    keys = [key_of(client_id, enterprise_id, team_id, is_enterprise_install)]
    if enterprise_id and not is_enterprise_install:
        keys.append(key_of(client_id, enterprise_id, None, True))
    for key in keys:
        row = SlackInstall.get_or_none(SlackInstall.key == key)
        if row is not None:
            return _workspace(row)
    return None


def locked(client_id: str, team_id: str | None, enterprise_id: str | None = None,
           is_enterprise_install: bool = False) -> Workspace | None:
    """`find`, holding the row until the transaction ends (a rotation in one process
    at a time: the second finds the token already refreshed)."""
    query = SlackInstall.select().where(SlackInstall.key == key_of(
        client_id, enterprise_id, team_id, is_enterprise_install))
    row = (query if is_sqlite() else query.for_update()).first()
    return None if row is None else _workspace(row)


def _workspace(row: SlackInstall) -> Workspace:
    names = {f.name for f in fields(Workspace)} - set(SEALED)
    space = Workspace(**{name: getattr(row, name) for name in names})
    space.bot_token = tokens.unseal(row.bot_token_sealed) or ""
    if row.bot_refresh_token_sealed:
        space.bot_refresh_token = tokens.unseal(row.bot_refresh_token_sealed)
    return space


def remove(client_id: str, team_id: str | None, enterprise_id: str | None = None,
           why: str = "uninstalled") -> int:
    """The app was removed from the workspace (or its token revoked): forget the
    installation; the firm's admins see it in `doctor`. The number of rows removed."""
    keys = [key_of(client_id, enterprise_id, team_id)]
    if not team_id:
        keys.append(key_of(client_id, enterprise_id, None, True))
    removed = SlackInstall.delete().where(SlackInstall.key.in_(keys)).execute()
    if removed and team_id:
        events.record("slack.removed", firm=_firm_of(team_id), actor="slack", team=team_id,
                      why=why)
    return removed


def last_removed(firm: Firm) -> Event | None:
    """When (and why) the app was last removed from the firm's workspace, if it was."""
    return (Event.select().where(Event.kind == "slack.removed", Event.firm == firm)
            .order_by(Event.at.desc()).first())


def state(firm: Firm, mode: str) -> str:
    """The firm's Slack in a few words, for lists: `installed`, `removed`, `not linked`…"""
    if mode == "off":
        return "Slack off"
    if not firm.slack_team_id:
        return "Slack not linked"
    if mode == "single" or installed(firm.slack_team_id):
        return f"Slack {firm.slack_team_id}"
    return f"Slack {firm.slack_team_id} removed"


def installed(team_id: str) -> bool:
    return SlackInstall.select().where(SlackInstall.team_id == team_id).exists()


def _firm_of(team_id: str) -> Firm | None:
    return Firm.get_or_none(Firm.slack_team_id == team_id)


# --- "Add to Slack" attempts in flight (OAuth `state`) ---------------------------------


def new_state(valid_for: timedelta) -> str:
    """A fresh OAuth state; only its digest is kept, until it is used or expires."""
    state = secrets.token_urlsafe(24)
    now = clock.now()
    OAuthState.delete().where(OAuthState.expires_at < now).execute()
    OAuthState.create(digest=tokens.digest(state), expires_at=now + valid_for)
    return state


def use_state(state: str) -> bool:
    """True once for a state this app issued and that hasn't expired."""
    if not state or len(state) > 100:
        return False
    used = OAuthState.delete().where(OAuthState.digest == tokens.digest(state),
                                     OAuthState.expires_at >= clock.now()).execute()
    return used == 1

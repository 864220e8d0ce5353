"""Installing the Slack app in each firm's workspace, with Bolt's own OAuth flow.

`GET /slack/install` (the "Add to Slack" page) and `GET /slack/oauth_redirect` are
Bolt's `OAuthFlow`; what it stores goes through the slack_sdk interfaces below,
backed by our database (core.firms.workspaces: bot tokens sealed under ENCRYPTION_KEYS):
- `WorkspaceInstallationStore` — slack_sdk's `InstallationStore` (bot scopes only:
  user tokens are never asked for, so none are kept);
- `DatabaseStateStore` — slack_sdk's `OAuthStateStore`, single use, 10 minutes;
  the browser's copy of the state is slack_sdk's cookie, with `SameSite=Lax` added
  (`LaxStateCookie`: still Secure and HttpOnly; Lax lets Slack's redirect back, a
  top-level GET, bring it);
- `WorkspaceAuthorize` — Bolt's `Authorize`: a request's token from the store,
  refreshed first when it rotates (bot.client), without an `auth.test` per request.
`app_uninstalled` and `tokens_revoked` delete the installation: nothing more goes
to that workspace, and the firm's `doctor` says so.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from flask import render_template
from slack_bolt import App, BoltResponse
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.authorize import Authorize
from slack_bolt.oauth import OAuthFlow
from slack_bolt.oauth.callback_options import CallbackOptions, FailureArgs, SuccessArgs
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk.oauth.installation_store import Bot, Installation, InstallationStore
from slack_sdk.oauth.state_store import OAuthStateStore
from slack_sdk.oauth.state_utils import OAuthStateUtils

from core.firms import workspaces
from core.firms.workspaces import Workspace
from core.platform import db
from core.platform.config import Settings, settings
from core.records import Firm

from . import connect_account, slack_api

log = logging.getLogger(__name__)
STATE_LIFE = timedelta(minutes=10)
# The bot scopes asked for at install: the manifest's, no more (slack-manifest.yml).
SCOPES = ("commands", "chat:write", "channels:history", "groups:history", "reactions:write",
          "channels:read", "groups:read")


def oauth_flow(config: Settings) -> OAuthFlow:
    store = WorkspaceInstallationStore(config.slack_client_id)
    settings = OAuthSettings(
        client_id=config.slack_client_id, client_secret=config.slack_client_secret,
        scopes=list(SCOPES), installation_store=store, installation_store_bot_only=True,
        state_store=DatabaseStateStore(), state_expiration_seconds=int(STATE_LIFE.total_seconds()),
        redirect_uri=f"{config.public_base_url}/slack/oauth_redirect",
        token_rotation_expiration_minutes=int(slack_api.ROTATE_BEFORE.total_seconds() // 60),
        callback_options=CallbackOptions(success=_installed, failure=_not_installed))
    settings.state_utils = LaxStateCookie(cookie_name=settings.state_cookie_name,
                                          expiration_seconds=settings.state_expiration_seconds)
    return InstallFlow(client=slack_api.base(config), settings=settings)


class LaxStateCookie(OAuthStateUtils):
    """slack_sdk's state cookie (Secure, HttpOnly, Path=/), with SameSite=Lax."""

    def build_set_cookie_for_new_state(self, state: str) -> str:
        return f"{super().build_set_cookie_for_new_state(state)}; SameSite=Lax"

    def build_set_cookie_for_deletion(self) -> str:
        return f"{super().build_set_cookie_for_deletion()}; SameSite=Lax"


class InstallFlow(OAuthFlow):
    """Bolt's flow, with our own "Add to Slack" page."""

    def build_install_page_html(self, url: str, request) -> str:
        return render_template("slack_install.html", url=url)


def _installed(args: SuccessArgs) -> BoltResponse:
    team = args.installation.team_id
    with db.connection():
        firm = Firm.get_or_none(Firm.slack_team_id == team) if team else None
    connect_account.welcome(team, args.installation.user_id)
    html = render_template("slack_installed.html", ok=True, firm=firm,
                           team=args.installation.team_name or "your workspace")
    return BoltResponse(status=200, body=html, headers={"Content-Type": "text/html"})


def _not_installed(args: FailureArgs) -> BoltResponse:
    log.info("Slack install not completed: %s", args.reason)
    html = render_template("slack_installed.html", ok=False, reason=args.reason)
    return BoltResponse(status=args.suggested_status_code, body=html,
                        headers={"Content-Type": "text/html"})


# --- slack_sdk's stores over our database ----------------------------------------------------


def _when(epoch: float | int | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def _scopes(value) -> str:
    return ",".join(value) if isinstance(value, list | tuple) else (value or "")


class WorkspaceInstallationStore(InstallationStore):
    def __init__(self, client_id: str):
        self.client_id = client_id

    @property
    def logger(self) -> logging.Logger:
        return log

    def save(self, installation: Installation) -> None:
        if installation.bot_token:
            self.save_bot(installation.to_bot(), installer=installation.user_id)

    def save_bot(self, bot: Bot, installer: str | None = None) -> None:
        with db.connection():
            workspaces.save(Workspace(
                client_id=self.client_id, team_id=bot.team_id, enterprise_id=bot.enterprise_id,
                is_enterprise_install=bool(bot.is_enterprise_install), app_id=bot.app_id,
                team_name=bot.team_name, enterprise_name=bot.enterprise_name, bot_id=bot.bot_id,
                bot_user_id=bot.bot_user_id, bot_scopes=_scopes(bot.bot_scopes),
                bot_token=bot.bot_token, bot_refresh_token=bot.bot_refresh_token,
                bot_token_expires_at=_when(bot.bot_token_expires_at), installer_user_id=installer,
                installed_at=_when(bot.installed_at)))

    def find_bot(self, *, enterprise_id, team_id, is_enterprise_install=False) -> Bot | None:
        space = slack_api.installation(team_id, enterprise_id, bool(is_enterprise_install))
        return slack_api.as_bot(space) if space else None

    def find_installation(self, *, enterprise_id, team_id, user_id=None,
                          is_enterprise_install=False) -> Installation | None:
        space = slack_api.installation(team_id, enterprise_id, bool(is_enterprise_install))
        if space is None or (user_id is not None and user_id != space.installer_user_id):
            return None  # no user tokens are kept: only the installer's bot installation
        bot = slack_api.as_bot(space)
        return Installation(
            app_id=bot.app_id, enterprise_id=bot.enterprise_id, team_id=bot.team_id,
            team_name=bot.team_name, enterprise_name=bot.enterprise_name,
            bot_token=bot.bot_token, bot_id=bot.bot_id, bot_user_id=bot.bot_user_id,
            bot_scopes=bot.bot_scopes, bot_refresh_token=bot.bot_refresh_token,
            bot_token_expires_at=bot.bot_token_expires_at, user_id=space.installer_user_id,
            is_enterprise_install=bot.is_enterprise_install, installed_at=bot.installed_at)

    def delete_bot(self, *, enterprise_id, team_id) -> None:
        with db.connection():
            workspaces.remove(self.client_id, team_id, enterprise_id)

    def delete_installation(self, *, enterprise_id, team_id, user_id=None) -> None:
        if user_id is None:  # a user's own tokens are never kept: nothing to delete
            self.delete_bot(enterprise_id=enterprise_id, team_id=team_id)

    def delete_all(self, *, enterprise_id, team_id) -> None:
        self.delete_bot(enterprise_id=enterprise_id, team_id=team_id)


class DatabaseStateStore(OAuthStateStore):
    """The OAuth `state` of each "Add to Slack" click: kept as a digest, used once."""

    @property
    def logger(self) -> logging.Logger:
        return log

    def issue(self, *args, **kwargs) -> str:
        with db.connection():
            return workspaces.new_state(STATE_LIFE)

    def consume(self, state: str) -> bool:
        with db.connection():
            return workspaces.use_state(state)


class WorkspaceAuthorize(Authorize):
    """Each request's token: its workspace's installation (rotated when due)."""

    def __call__(self, *, context, enterprise_id, team_id, user_id, **_) -> AuthorizeResult | None:
        space = slack_api.installation(team_id, enterprise_id, bool(context.is_enterprise_install))
        if space is None or not space.bot_token:
            return None
        return AuthorizeResult(enterprise_id=space.enterprise_id, team_id=team_id,
                               bot_user_id=space.bot_user_id, bot_id=space.bot_id,
                               bot_token=space.bot_token, bot_scopes=space.bot_scopes,
                               user_id=user_id)


# --- the app removed from a workspace -----------------------------------------------------------


def register(app: App) -> None:
    app.event("app_uninstalled")(on_uninstalled)
    app.event("tokens_revoked")(on_tokens_revoked)


def on_uninstalled(context) -> None:
    _forget(context, "uninstalled")


def on_tokens_revoked(event, context) -> None:
    if (event.get("tokens") or {}).get("bot"):
        _forget(context, "tokens_revoked")


def _forget(context, why: str) -> None:
    with db.connection():
        removed = workspaces.remove(settings().slack_client_id, context.team_id,
                                    context.enterprise_id, why=why)
    log.info("Slack workspace %s: %s (%d installation removed)", context.team_id, why, removed)

"""A Slack Web API client for a workspace — the one place that answers "which token
talks to team T": the firm's installation (OAuth, refreshed before it expires when
token rotation is on), or SLACK_BOT_TOKEN in single-workspace mode. `SLACK_API_URL`
honoured, retries on rate limits, server errors and dropped connections.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from slack_sdk import WebClient
from slack_sdk.errors import SlackTokenRotationError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.oauth.installation_store import Bot
from slack_sdk.oauth.token_rotation import TokenRotator

from core.firms import workspaces
from core.firms.workspaces import Workspace
from core.platform import clock, db
from core.platform.config import Settings, settings
from core.records import Firm

log = logging.getLogger(__name__)
# A rotating token is refreshed when it has less than this left (Bolt's default).
ROTATE_BEFORE = timedelta(minutes=120)


def base(config: Settings | None = None) -> WebClient:
    """A client with no token: the OAuth exchange, and Bolt's template for its own."""
    return _web("", (config or settings()).slack_api_url)


def for_team(team_id: str | None, enterprise_id: str | None = None) -> WebClient | None:
    """The client for workspace `team_id`, or None when the app isn't installed there
    (nothing is sent to a workspace that removed the app)."""
    config = settings()
    if config.slack_mode == "single":
        return _web(config.slack_bot_token, config.slack_api_url)
    if config.slack_mode != "oauth" or not team_id:
        return None
    space = installation(team_id, enterprise_id)
    return _web(space.bot_token, config.slack_api_url) if space and space.bot_token else None


def for_firm(firm: Firm | int | None) -> WebClient | None:
    if isinstance(firm, int):
        firm = Firm.get_or_none(Firm.id == firm)
    return for_team(firm.slack_team_id) if firm is not None else None


def installation(team_id: str | None, enterprise_id: str | None = None,
                 is_enterprise_install: bool = False) -> Workspace | None:
    """The workspace's installation, its bot token refreshed first if it is about to
    expire (one process refreshes; the others find the new token)."""
    config = settings()
    with db.connection():
        space = workspaces.find(config.slack_client_id, team_id, enterprise_id,
                                is_enterprise_install)
        if space is None or not _expiring(space):
            return space
        return _rotated(config, space)


def _expiring(space: Workspace) -> bool:
    expires = space.bot_token_expires_at
    return bool(space.bot_refresh_token and expires and expires - clock.now() < ROTATE_BEFORE)


def _rotated(config: Settings, space: Workspace) -> Workspace:
    rotator = TokenRotator(client_id=config.slack_client_id,
                           client_secret=config.slack_client_secret, client=base(config))
    with db.database.atomic():
        current = workspaces.locked(space.client_id, space.team_id, space.enterprise_id,
                                    space.is_enterprise_install)
        if current is None or not _expiring(current):
            return current or space
        try:
            bot = rotator.perform_bot_token_rotation(
                bot=as_bot(current), minutes_before_expiration=_minutes(ROTATE_BEFORE))
        except SlackTokenRotationError as problem:
            log.warning("Slack token of %s not refreshed (%s)", current.team_id,
                        problem.api_error.response.get("error"))
            return current
        if bot is None:
            return current
        workspaces.rotated(current, bot.bot_token, bot.bot_refresh_token,
                           datetime.fromtimestamp(bot.bot_token_expires_at, UTC))
        return workspaces.find(current.client_id, current.team_id, current.enterprise_id,
                               current.is_enterprise_install) or current


def _minutes(span: timedelta) -> int:
    return int(span.total_seconds() // 60)


def as_bot(space: Workspace) -> Bot:
    """The Slack SDK's view of an installation's bot."""
    expires = space.bot_token_expires_at
    return Bot(app_id=space.app_id, enterprise_id=space.enterprise_id,
               enterprise_name=space.enterprise_name, team_id=space.team_id,
               team_name=space.team_name, bot_token=space.bot_token, bot_id=space.bot_id,
               bot_user_id=space.bot_user_id, bot_scopes=space.bot_scopes,
               bot_refresh_token=space.bot_refresh_token,
               bot_token_expires_at=int(expires.timestamp()) if expires else None,
               is_enterprise_install=space.is_enterprise_install,
               installed_at=(space.installed_at or clock.now()).timestamp())


@lru_cache(maxsize=512)
def _web(token: str, base_url: str) -> WebClient:
    """One client (and HTTP connection pool) per token, kept for the process."""
    base_url = base_url if base_url.endswith("/") else base_url + "/"
    client = WebClient(token=token or None, base_url=base_url, timeout=10)
    client.retry_handlers.extend([RateLimitErrorRetryHandler(max_retry_count=2),
                                  ServerErrorRetryHandler(max_retry_count=2),
                                  ConnectionErrorRetryHandler(max_retry_count=2)])
    return client

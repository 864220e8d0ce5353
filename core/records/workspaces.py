"""Slack: installs (one a workspace), OAuth states, and the one-time requests that
connect a Slack user to a LedgerSync login."""

from __future__ import annotations

from peewee import AutoField, BooleanField, CharField, TextField

from core.platform import clock

from .base import BaseModel, UTCDateTimeField


class SlackInstall(BaseModel):
    """A Slack workspace (or organisation) the app is installed in, by OAuth: its bot
    token and refresh token sealed under ENCRYPTION_KEYS (credentials), one row per
    workspace (`key`), replaced by a reinstall, deleted when the app is removed."""

    id = AutoField()
    key = CharField(max_length=120, unique=True)  # client id : enterprise : team
    client_id = CharField(max_length=64)
    app_id = CharField(max_length=32, null=True)
    enterprise_id = CharField(max_length=32, null=True)
    enterprise_name = CharField(max_length=200, null=True)
    team_id = CharField(max_length=32, null=True, index=True)
    team_name = CharField(max_length=200, null=True)
    is_enterprise_install = BooleanField(default=False)
    bot_id = CharField(max_length=32, null=True)
    bot_user_id = CharField(max_length=32, null=True)
    bot_scopes = TextField(default="")
    bot_token_sealed = TextField()
    bot_refresh_token_sealed = TextField(null=True)
    bot_token_expires_at = UTCDateTimeField(null=True)
    installer_user_id = CharField(max_length=32, null=True)
    installed_at = UTCDateTimeField(default=clock.now)
    updated_at = UTCDateTimeField(default=clock.now)


class OAuthState(BaseModel):
    """An "Add to Slack" attempt in flight: the digest of its `state`, single use."""

    digest = CharField(max_length=64, primary_key=True)
    expires_at = UTCDateTimeField()


class SlackLinkRequest(BaseModel):
    """A one-time page that links a Slack user to a LedgerSync account (asked for by
    `/ledgersync connect`): the digest of its token, who asked, and its life."""

    digest = CharField(max_length=64, primary_key=True)
    team_id = CharField(max_length=32)
    user_id = CharField(max_length=32)
    created_at = UTCDateTimeField(default=clock.now)
    expires_at = UTCDateTimeField()
    # The browser that opened it first (digest of a cookie it was given): only it may use it.
    browser = CharField(max_length=64, null=True)
    used_at = UTCDateTimeField(null=True)

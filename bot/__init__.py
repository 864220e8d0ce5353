"""The Slack app for firm staff and LedgerSync support (Bolt, HTTP mode).

`POST /slack/events` is Bolt's one endpoint: slash commands, buttons, modals,
events. Bolt verifies every request's signature (forged or older than five
minutes: 401). Two modes (core.config `slack_mode`):
- `oauth` (SLACK_CLIENT_ID and SLACK_CLIENT_SECRET): installed in each firm's
  workspace with "Add to Slack" — `GET /slack/install`, `GET /slack/oauth_redirect`
  (bot/installations.py); every call uses its workspace's token (bot/client.py);
- `single` (SLACK_BOT_TOKEN): one workspace, for development and small installs.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from flask import Blueprint, Response, request
from slack_bolt import App
from slack_bolt.adapter.flask import SlackRequestHandler

from core.config import Settings

from . import client, installations, listeners

# Listeners acknowledge first and then work on this pool; Bolt's default of 5
# threads queued acknowledgements behind slow answers under load (bench/slack_ack.py).
LISTENER_THREADS = 32


def create_bolt_app(config: Settings) -> App:
    common = {"signing_secret": config.slack_signing_secret, "name": "LedgerSync Connect",
              "listener_executor": ThreadPoolExecutor(LISTENER_THREADS, "slack-listener")}
    if config.slack_mode == "oauth":
        app = App(client=client.base(config), oauth_flow=installations.oauth_flow(config),
                  authorize=installations.WorkspaceAuthorize(), **common)
    else:
        app = App(client=client.for_team(None), **common)
    listeners.register(app)
    return app


def blueprint(config: Settings) -> Blueprint:
    app = create_bolt_app(config)
    handler = SlackRequestHandler(app)
    bp = Blueprint("slack", __name__, template_folder="templates")
    if config.slack_mode == "oauth":

        @bp.get("/slack/install")
        @bp.get("/slack/oauth_redirect")
        def install():
            return handler.handle(request)

    @bp.post("/slack/events")
    def events():
        # Bolt verifies the signature; a timestamp that isn't a number would make
        # its check raise (a 500 for an unauthenticated request): refuse it first.
        stamp = request.headers.get("X-Slack-Request-Timestamp", "")
        if not (stamp.isascii() and stamp.isdigit()):
            return Response("invalid request\n", 401, mimetype="text/plain")
        return handler.handle(request)

    return bp

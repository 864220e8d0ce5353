"""The Slack app for firm staff and LedgerSync support (Bolt, HTTP mode).

`POST /slack/events` is Bolt's one endpoint: slash commands, buttons, modals,
events. Bolt verifies every request's signature (forged or older than five
minutes: 401). Two modes (core.platform.config `slack_mode`):
- `oauth` (SLACK_CLIENT_ID and SLACK_CLIENT_SECRET): installed in each firm's
  workspace with "Add to Slack" — `GET /slack/install`, `GET /slack/oauth_redirect`
  (bot/installations.py); every call uses its workspace's token (bot/client.py);
- `single` (SLACK_BOT_TOKEN): one workspace, for development and small installs.
"""

from __future__ import annotations

import time

from flask import Blueprint, Response, request
from slack_bolt import App
from slack_bolt.adapter.flask import SlackRequestHandler
from slack_bolt.adapter.flask.handler import to_bolt_request, to_flask_response

from core.platform.config import Settings
from ops import context, metrics

from . import deferral, installations, listeners, slack_api

# Listeners acknowledge first and then work on this pool; Bolt's default of 5
# threads queued acknowledgements behind slow answers under load (bench/slack_ack.py).
# Its threads see the request's id (`ops.context`): their log lines and the jobs they
# enqueue carry it.
LISTENER_THREADS = 32
# What reading a body Slack never sends raises in Bolt (JSON that isn't an object, or
# nested too deep, a `payload` that isn't JSON).
UNREADABLE = (ValueError, TypeError, AttributeError, LookupError, RecursionError)


def create_bolt_app(config: Settings) -> App:
    common = {"signing_secret": config.slack_signing_secret, "name": "LedgerSync Connect",
              "listener_executor": context.CarryingExecutor(LISTENER_THREADS, "slack-listener")}
    if config.slack_mode == "oauth":
        app = App(client=slack_api.base(config), oauth_flow=installations.oauth_flow(config),
                  authorize=installations.WorkspaceAuthorize(), **common)
    else:
        app = App(client=slack_api.for_team(None), **common)
    listeners.register(app)
    return app


def _well_formed(body) -> bool:
    """What Bolt's own middleware takes for granted of a body (Slack never sends
    otherwise): an object, and an Events API callback's `event` an object too."""
    if not isinstance(body, dict):
        return False
    return body.get("type") != "event_callback" or isinstance(body.get("event"), dict)


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
        # Bolt verifies the signature, but reads the body first; a timestamp that isn't
        # a number, or a body it can't read, would make it raise (a 500 for an
        # unauthenticated request): refuse them first.
        started = time.perf_counter()
        stamp = request.headers.get("X-Slack-Request-Timestamp", "")
        if not (stamp.isascii() and stamp.isdigit()):
            metrics.verification_failed("slack")
            return Response("invalid request\n", 401, mimetype="text/plain")
        try:
            asked = to_bolt_request(request)
        except UNREADABLE:
            return Response("unreadable request\n", 400, mimetype="text/plain")
        if not _well_formed(asked.body):
            return Response("unreadable request\n", 400, mimetype="text/plain")
        answer = handler.app.dispatch(asked)
        _measure(asked.body, answer.status, started)
        return to_flask_response(answer)

    return bp


def _measure(body: dict, status: int, started: float) -> None:
    """A refused signature (forged, or replayed over 5 minutes late), or how long the
    acknowledgement took since the request arrived (`ledgersync_slack_ack_seconds`)."""
    if status == 401:
        metrics.verification_failed("slack")
        return
    waited = context.since_received(time.perf_counter() - started)
    metrics.SLACK_ACK.labels(deferral.command_of(body)).observe(waited)

"""The Slack app for firm staff and LedgerSync support (Bolt, HTTP mode).

`POST /slack/events` is Bolt's one endpoint: slash commands, buttons, modals.
Bolt verifies every request's signature (forged or older than five minutes: 401).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from flask import Blueprint, Response, request
from slack_bolt import App
from slack_bolt.adapter.flask import SlackRequestHandler

from core.config import Settings

from . import client, listeners

# Listeners acknowledge first and then work on this pool; Bolt's default of 5
# threads queued acknowledgements behind slow answers under load (bench/slack_ack.py).
LISTENER_THREADS = 32


def create_bolt_app(config: Settings) -> App:
    app = App(client=client.web(config), signing_secret=config.slack_signing_secret,
              name="LedgerSync Connect",
              listener_executor=ThreadPoolExecutor(LISTENER_THREADS, "slack-listener"))
    listeners.register(app)
    return app


def blueprint(config: Settings) -> Blueprint:
    handler = SlackRequestHandler(create_bolt_app(config))
    bp = Blueprint("slack", __name__)

    @bp.post("/slack/events")
    def events():
        # Bolt verifies the signature; a timestamp that isn't a number would make
        # its check raise (a 500 for an unauthenticated request): refuse it first.
        stamp = request.headers.get("X-Slack-Request-Timestamp", "")
        if not (stamp.isascii() and stamp.isdigit()):
            return Response("invalid request\n", 401, mimetype="text/plain")
        return handler.handle(request)

    return bp

"""A bare Bolt app on Flask for bench/slack_ack.py: `/ledgersync` acknowledges and
answers at once with a fixed line, in the listener — the least any Bolt app does."""

import os

from flask import Flask, request
from slack_bolt import App
from slack_bolt.adapter.flask import SlackRequestHandler
from slack_sdk import WebClient

# The token goes to the client alone (Bolt would read it from the environment as well,
# and warn on every request that it is unused).
bolt = App(signing_secret=os.environ["SLACK_SIGNING_SECRET"],
           client=WebClient(token=os.environ.pop("SLACK_BOT_TOKEN"),
                            base_url=os.environ["SLACK_API_URL"]))


@bolt.command("/ledgersync")
def ledgersync(ack, respond):
    ack()
    respond(response_type="ephemeral", text="ok")


handler = SlackRequestHandler(bolt)
app = Flask(__name__)


@app.post("/slack/events")
def events():
    return handler.handle(request)


@app.get("/healthz")
def healthz():
    return "ok"

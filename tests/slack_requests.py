"""Signed requests, as Slack sends them, into the real Flask app."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

from tests.slack_standin import TEAM

SECRET = "slack-signing-secret-for-tests"


def signed(web, body: str, *, timestamp: int | None = None, secret: str = SECRET,
           headers: dict | None = None):
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return web.post("/slack/events", data=body, headers={
        "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded", **(headers or {})})


def command(web, slack, text: str, *, user: str = "UANN", team: str = TEAM, **kwargs):
    body = urlencode({"token": "legacy", "team_id": team, "user_id": user, "command": "/ledgersync",
                      "text": text, "channel_id": "CWORK", "response_url": slack.response_url(),
                      "trigger_id": "trigger-1"})
    return signed(web, body, **kwargs)


def interaction(web, payload: dict, **kwargs):
    return signed(web, urlencode({"payload": json.dumps(payload)}), **kwargs)


def button(web, slack, action_id: str, value, *, user: str = "UANN", team: str = TEAM):
    return interaction(web, {
        "type": "block_actions", "team": {"id": team}, "user": {"id": user},
        "trigger_id": "trigger-2", "response_url": slack.response_url("button"),
        "actions": [{"type": "button", "action_id": action_id, "value": str(value),
                     "block_id": "b", "action_ts": "1"}],
        "container": {"type": "message"}, "api_app_id": "A1"})


def submit(web, callback_id: str, values: dict, *, user: str = "UANN", team: str = TEAM,
           metadata: str = ""):
    state = {block: {"value": ({"type": "radio_buttons", "selected_option": {"value": v}}
                               if block in ("channel", "purpose") else
                               {"type": "plain_text_input", "value": v})}
             for block, v in values.items()}
    return interaction(web, {
        "type": "view_submission", "team": {"id": team}, "user": {"id": user},
        "api_app_id": "A1", "trigger_id": "trigger-3",
        "view": {"id": "V1", "callback_id": callback_id, "private_metadata": metadata,
                 "state": {"values": state}, "type": "modal"}})


def said(slack, count=1) -> str:
    """Everything the app answered through response URLs, as one string."""
    posts = slack.wait_for("respond:cmd", count) + slack.of("respond:button")
    return json.dumps(posts)


def event(web, event: dict, *, team: str = TEAM, retry: int | None = None):
    """An Events API delivery (`event_callback`), as JSON, signed."""
    body = json.dumps({"token": "legacy", "team_id": team, "api_app_id": "A1",
                       "type": "event_callback", "event_id": f"Ev{event.get('ts', '0')}",
                       "event_time": int(time.time()), "event": event})
    headers = {"Content-Type": "application/json"}
    if retry is not None:
        headers.update({"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"})
    return signed(web, body, headers=headers)


def opened_view(slack) -> dict:
    """The modal the app opened (views.open), as a dict."""
    view = slack.wait_for("views.open")[0]["view"]
    return json.loads(view) if isinstance(view, str) else view

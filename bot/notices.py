"""Firm notices posted in the firm's chosen channel (the `slack` channel of the
outbound port), with the button that is the next step."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError

from core.config import settings
from core.models import Message
from core.notices import NO_CHANNEL
from core.outbound import SendResult

from . import client as slack_client
from .ids import ActionId
from .views import button, esc, section

NEXT_STEP = {"notice_expired": ("Resend", ActionId.RESEND),
             "notice_needs_restoring": ("Ask to reconnect", ActionId.RECONNECT),
             "notice_new_link_requested": ("Resend", ActionId.RESEND),
             "notice_delivery_failed": ("Resend", ActionId.RESEND)}
PERMANENT = {"channel_not_found", "not_in_channel", "is_archived", "invalid_auth",
             "account_inactive", "msg_too_long"}


class SlackNoticeSender:
    def send(self, message: Message) -> SendResult:
        if message.to_addr == NO_CHANNEL:
            return SendResult("canceled", "slack", error_message="no channel chosen "
                                                                 "(/ledgersync notify #channel)")
        blocks = [section(esc(message.body))]
        step = NEXT_STEP.get(message.kind)
        if step and message.client_id:
            blocks.append({"type": "actions",
                           "elements": [button(step[0], step[1], message.client_id)]})
        try:
            reply = slack_client.web(settings()).chat_postMessage(
                channel=message.to_addr, text=esc(message.body)[:3000], blocks=blocks)
        except SlackApiError as problem:
            code = problem.response.get("error", "error")
            if code in PERMANENT:
                return SendResult("failed", "slack", error_code=code,
                                  error_message=f"Slack refused: {code.replace('_', ' ')}")
            return SendResult("pending", "slack", error_code=code, retry=True)
        return SendResult("delivered", "slack", provider_id=f"{reply['channel']}:{reply['ts']}")

"""Firm notices posted in the firm's chosen channel (the `slack` channel of the
outbound port), with the button that is the next step."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError

from core.config import settings
from core.models import ClientThread, Message
from core.notices import NO_CHANNEL
from core.outbound import SendResult
from core.phones import display

from . import client as slack_client
from .ids import ActionId
from .views import button, context, esc, section

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
        try:
            if message.kind == "notice_client_text" and message.client_id:
                reply = _in_client_thread(message)
            else:
                reply = slack_client.web(settings()).chat_postMessage(
                    channel=message.to_addr, text=esc(message.body)[:3000],
                    blocks=_blocks(message))
        except SlackApiError as problem:
            code = problem.response.get("error", "error")
            if code in PERMANENT:
                return SendResult("failed", "slack", error_code=code,
                                  error_message=f"Slack refused: {code.replace('_', ' ')}")
            return SendResult("pending", "slack", error_code=code, retry=True)
        return SendResult("delivered", "slack", provider_id=f"{reply['channel']}:{reply['ts']}")


def _blocks(message: Message) -> list[dict]:
    blocks = [section(esc(message.body))]
    step = NEXT_STEP.get(message.kind)
    if step and message.client_id:
        blocks.append({"type": "actions",
                       "elements": [button(step[0], step[1], message.client_id)]})
    return blocks


def _in_client_thread(message: Message):
    """A client's text goes in their thread (started by their first text), where a
    staff reply is texted back to them."""
    web = slack_client.web(settings())
    thread = ClientThread.get_or_none(ClientThread.client == message.client_id,
                                      ClientThread.channel == message.to_addr)
    said = f"> {esc(message.body)}".replace("\n", "\n> ")
    if thread is not None:
        return web.chat_postMessage(channel=message.to_addr, thread_ts=thread.ts,
                                    text=esc(message.body)[:3000], blocks=[section(said)])
    client = message.client
    number = display(client.phone) if client.phone else "no number on file"
    reply = web.chat_postMessage(
        channel=message.to_addr, text=f"{esc(client.name)} texted: {esc(message.body)}"[:3000],
        blocks=[section(f":speech_balloon: *{esc(client.name)}* ({number}) texted:\n{said}"),
                context("Reply in this thread to text them back.")])
    ClientThread.insert(client=client, channel=reply["channel"], ts=reply["ts"]) \
        .on_conflict_ignore().execute()
    return reply

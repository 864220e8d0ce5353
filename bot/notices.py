"""Firm notices posted in the firm's chosen channel, or by direct message to its
admins until one is chosen (the `slack` channel of the outbound port), with the
button that is the next step; and the check that the bot can post in a channel
before it is chosen."""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.ids import ActionId
from bot.parse import ChannelRef
from bot.views import button, context, esc, section
from core.invitations import client_texts
from core.messaging.notices import NO_CHANNEL, NOBODY_TOLD
from core.messaging.outbound import SendResult
from core.platform.config import settings
from core.platform.phones import display
from core.records import Firm, Message, Status
from core.reports import digest

from . import funnel_views
from . import slack_api as slack_client

NEXT_STEP = {"notice_expired": ("Resend", ActionId.RESEND),
             "notice_needs_restoring": ("Ask to reconnect", ActionId.RECONNECT),
             "notice_new_link_requested": ("Resend", ActionId.RESEND),
             "notice_delivery_failed": ("Resend", ActionId.RESEND)}
PERMANENT = {"channel_not_found", "not_in_channel", "is_archived", "invalid_auth",
             "account_inactive", "msg_too_long", "user_not_found", "user_disabled",
             "cannot_dm_bot"}
NO_THREAD_IN_DM = ("To answer them by text in a thread, an admin chooses a notices channel: "
                   "/ledgersync notify #channel")
MAX_PAGES = 20  # conversations.list, 1,000 channels a page


NOT_INSTALLED = ("LedgerSync isn't installed in the firm's Slack workspace: an admin "
                 "installs it again from {url}/slack/install")


class SlackNoticeSender:
    def send(self, message: Message) -> SendResult:
        if message.to_addr == NO_CHANNEL:
            return SendResult("canceled", "slack", error_message=NOBODY_TOLD)
        web = slack_client.for_firm(message.firm_id)
        if web is None:  # removed from the workspace: nothing more is sent there
            return SendResult("canceled", "slack", error_code="not_installed",
                              error_message=NOT_INSTALLED.format(url=settings().public_base_url))
        return _post(web, message)


def _post(web: WebClient, message: Message) -> SendResult:
    try:
        if message.kind == "notice_client_text" and message.client_id:
            reply = _client_text(web, message)
        else:
            reply = web.chat_postMessage(
                channel=message.to_addr, text=esc(message.body)[:3000], blocks=_blocks(message))
    except SlackApiError as problem:
        code = problem.response.get("error", "error")
        if code in PERMANENT:
            return SendResult("failed", "slack", error_code=code,
                              error_message=f"Slack refused: {code.replace('_', ' ')}")
        return SendResult(Status.PENDING, "slack", error_code=code, retry=True)
    return SendResult("delivered", "slack", provider_id=f"{reply['channel']}:{reply['ts']}")


def _blocks(message: Message) -> list[dict]:
    seen = digest.stored(message) if message.kind == "notice_digest" else None
    if seen is not None:  # the digest: its stages, names and follow-up buttons
        return funnel_views.digest_blocks(seen)
    blocks = [section(esc(message.body))]
    step = NEXT_STEP.get(message.kind)
    if step and message.client_id:
        blocks.append({"type": "actions",
                       "elements": [button(step[0], step[1], message.client_id)]})
    return blocks


def _is_person(to_addr: str) -> bool:
    """A Slack user id (`chat.postMessage` posts in the app's DM with them), not a channel."""
    return to_addr[:1] in ("U", "W")


def _client_text(web: WebClient, message: Message):
    """A client's text goes in their thread in the channel (started by their first
    text), where a staff reply is texted back to them; in a DM, as it is."""
    if not _is_person(message.to_addr):
        return _in_client_thread(web, message)
    return web.chat_postMessage(
        channel=message.to_addr, text=_texted_text(message),
        blocks=[_texted(message), context(NO_THREAD_IN_DM)])


def _texted_text(message: Message) -> str:
    return f"{esc(message.client.name)} texted: {esc(message.body)}"[:3000]


def _quoted(message: Message) -> str:
    return f"> {esc(message.body)}".replace("\n", "\n> ")


def _texted(message: Message) -> dict:
    client = message.client
    number = display(client.phone) if client.phone else "no number on file"
    return section(f":speech_balloon: *{esc(client.name)}* ({number}) texted:\n"
                   f"{_quoted(message)}")


def _in_client_thread(web: WebClient, message: Message):
    thread = client_texts.thread_of(message.client_id, message.to_addr)
    if thread is not None:
        return web.chat_postMessage(channel=message.to_addr, thread_ts=thread.ts,
                                    text=esc(message.body)[:3000],
                                    blocks=[section(_quoted(message))])
    reply = web.chat_postMessage(
        channel=message.to_addr, text=_texted_text(message),
        blocks=[_texted(message), context("Reply in this thread to text them back.")])
    client_texts.thread_started(message.client_id, reply["channel"], reply["ts"])
    return reply


# --- choosing the channel (/ledgersync notify) -------------------------------------


@dataclass(frozen=True)
class Tried:
    """A channel tried for notices: its id when found, and Slack's refusal, if any
    (`not_found`: no channel of that name that the app can see)."""

    channel: str | None
    refused: str | None = None


def try_channel(ref: ChannelRef, firm: Firm) -> Tried:
    """Find the channel named and post the confirmation there at once: it may be
    chosen only when that post went in."""
    web = slack_client.for_firm(firm)
    channel = ref.id
    if web is None:
        return Tried(channel, "not_installed")
    try:
        channel = channel or _find(web, ref.name or "")
        if channel is None:
            return Tried(None, "not_found")
        web.chat_postMessage(channel=channel,
                             text=f"Firm notices for {esc(firm.name)} will be posted here.")
    except SlackApiError as problem:
        return Tried(channel, problem.response.get("error") or "error")
    return Tried(channel)


def _find(web: WebClient, name: str) -> str | None:
    """A channel's id from its name: public ones, and private ones the app is in
    (`channels:read`, `groups:read`)."""
    cursor = None
    for _ in range(MAX_PAGES):
        page = web.conversations_list(types="public_channel,private_channel",
                                      exclude_archived=True, limit=1000, cursor=cursor)
        for channel in page.get("channels") or []:
            if name in (channel.get("name"), channel.get("name_normalized")):
                return channel["id"]
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            return None
    return None

"""The funnel's follow-up buttons (on `/ledgersync funnel`, the digest, the Home), as
`listeners.register` hangs them on the app: answered through `deferral.answers` (on the
workers when there is a queue) with `funnel_commands.follow_up` — the bulk run's
confirmation, to whoever clicked."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError

from . import funnel_commands, home
from . import slack_api as slack_client
from .deferral import answers, json_of

log = logging.getLogger(__name__)


@answers(replace=False)
def on_funnel_follow_up(body, action, context):
    """A follow-up button (the funnel, the digest, the Home): the bulk run's
    confirmation, to whoever clicked — by direct message from the Home, which has no
    conversation to answer in."""
    reply = funnel_commands.follow_up(json_of(action.get("value")), context["actor"])
    if home.from_home(body):
        _to_person(body, reply)
    return reply


def _to_person(body: dict, reply: dict) -> None:
    user = (body.get("user") or {}).get("id")
    team = (body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id")
    web = slack_client.for_team(team)
    if web is None or not user:
        return
    try:
        web.chat_postMessage(channel=user, text=reply.get("text", ""), blocks=reply["blocks"])
    except SlackApiError as refused:
        log.warning("slack funnel: the follow-up was not sent to %s: %s", user,
                    refused.response.get("error"))

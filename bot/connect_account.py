"""`/ledgersync connect` and App Home's Connect: a one-time web page links a Slack user
to a LedgerSync account (never a password in Slack). The page is `web/slack_link.py`;
what a Save there did is told to the person here, by DM (`tell`)."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError

from bot.ids import ActionId
from core.firms import access, slack_accounts
from core.firms.access import Connected
from core.platform import db

from . import slack_api as slack_client
from . import views

log = logging.getLogger(__name__)


def register(app) -> None:
    """Hang this module's listeners on the Bolt app."""
    app.action(str(ActionId.LINK_OPENED))(on_link_opened)
    app.action(str(ActionId.CONNECT))(on_connect_button)


def connect_message(team_id: str | None, user_id: str | None) -> dict:
    """`/ledgersync connect`'s answer (ephemeral): a button to a new linking page."""
    if not team_id or not user_id:
        return views.error("That didn't work: Slack didn't say who is asking. Try again.")
    return views.link_message(slack_accounts.ask(team_id, user_id))


def welcome(team_id: str | None, installer: str | None) -> bool:
    """Just installed in a workspace: the person who installed it gets a DM with the
    Connect button (unless their Slack user already acts for someone)."""
    web = slack_client.for_team(team_id)
    if web is None or not team_id or not installer:
        return False
    with db.connection():
        if access.slack_user_taken(team_id, installer):
            return False
        answer = connect_message(team_id, installer)
    try:
        web.chat_postMessage(channel=installer, text=answer["text"], blocks=answer["blocks"])
    except SlackApiError as refused:
        log.warning("Slack: no welcome for the installer (%s)", refused.response.get("error"))
        return False
    return True


def on_link_opened(ack) -> None:
    """The URL button opened the page in the person's browser; Slack tells us of the
    click too, and wants it acknowledged. Nothing else to do."""
    ack()


def on_connect_button(ack, body: dict, client) -> None:
    """App Home's Connect (no response URL there): a small modal with the same button,
    opened in the request, as `views.open` must follow the click within 3 seconds."""
    ack()
    user = body.get("user") or {}
    team = (body.get("team") or {}).get("id") or user.get("team_id")
    with db.connection():
        url = slack_accounts.ask(team, user.get("id"))
    client.views_open(trigger_id=body["trigger_id"], view=views.link_modal(url))


def tell(team_id: str, user_id: str, result: Connected) -> bool:
    """A DM to the person who asked for the page: the green check or the red X, as the
    page showed it. False (and nothing sent) when the app can't reach that workspace."""
    web = slack_client.for_team(team_id)
    if web is None:
        return False
    answer = views.link_result(**words(result))
    try:
        web.chat_postMessage(channel=user_id, text=answer["text"], blocks=answer["blocks"])
    except Exception as problem:  # noqa: BLE001 - the page has answered; Slack is extra
        why = problem.response.get("error") if isinstance(problem, SlackApiError) else \
            type(problem).__name__
        log.warning("Slack: the account-link result was not sent to %s (%s)", user_id, why)
        return False
    return True


def words(result: Connected) -> dict:
    if result.ok:
        return {"headline": slack_accounts.connected_as(result.staff), "ok": True,
                "warning": result.warning}
    return {"headline": result.reason, "ok": False, "fix": result.fix}

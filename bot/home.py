"""App Home: the firm at a glance for staff, a short guide for support.

Published fresh each time someone opens the Home tab (`app_home_opened`, tab
"home"), with the request's own client (the right workspace's token). Who is asking
was resolved by the middleware (`context["actor"]`). The views are built in
`home_views`; if working them out fails, the Home says so with a reference."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError

from core.firms.access import Actor
from core.platform import db
from core.reports import overview
from ops.errors import reference as error_reference

from . import home_views
from . import slack_api as slack_client

log = logging.getLogger(__name__)


def register(app) -> None:
    """Hang this module's listeners on the Bolt app."""
    app.event("app_home_opened")(on_home_opened)


def on_home_opened(event, context, client) -> None:
    if event.get("tab") != "home" or not event.get("user"):
        return  # the Messages tab, or no one to show it to
    publish(client, event["user"], context.get("actor") or Actor("nobody"))


def publish(client, user_id: str, actor: Actor) -> bool:
    """Publish `actor`'s Home for `user_id`; False (logged) if Slack refused it.
    Also the way to refresh a Home after a button on it did its work."""
    try:
        client.views_publish(user_id=user_id, view=view_for(actor))
    except SlackApiError as refused:
        log.warning("slack home: views.publish refused for %s: %s", user_id,
                    refused.response.get("error") if refused.response else refused)
        return False
    return True


def from_home(body: dict) -> bool:
    return (body.get("view") or {}).get("type") == "home"


def after_button(body: dict, actor: Actor, client=None, problem: dict | None = None) -> None:
    """A button on the Home did its work (on the workers, or here): the Home again,
    fresh; what went wrong, if anything, to the person by direct message (a Home has
    no conversation to answer in)."""
    user = (body.get("user") or {}).get("id")
    team = (body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id")
    client = client or slack_client.for_team(team)
    if client is None or not user:
        return
    if problem is not None:
        try:
            client.chat_postMessage(channel=user, text=problem.get("text", ""),
                                    blocks=problem.get("blocks"))
        except SlackApiError as refused:
            log.warning("slack home: the problem was not told to %s: %s", user,
                        refused.response.get("error"))
    publish(client, user, actor)


def view_for(actor: Actor) -> dict:
    """The Home this actor sees; the broken Home (with a reference) if it can't be
    worked out."""
    try:
        with db.connection():
            return _view(actor)
    except Exception:  # noqa: BLE001 - the person sees one line and a reference
        ref = error_reference()
        log.exception("slack home failed (ref %s)", ref)
        return home_views.broken(ref)


def _view(actor: Actor) -> dict:
    if actor.kind == "support":
        return home_views.support(actor)
    if actor.kind == "staff":
        return home_views.staff(actor, overview.of(actor.firm))
    return home_views.not_linked()

"""Fixtures for the Slack tests: the stand-in, the app with Slack configured, and
two firms whose staff are connected from two workspaces."""

from __future__ import annotations

import pytest

import wiring
from core.firms import access, firms
from core.invitations import clients
from core.messaging import outbound
from core.platform import config
from tests.slack_requests import SECRET
from tests.slack_standin import TEAM, SlackStandIn

OTHER_TEAM = "T0OTHER"


@pytest.fixture
def slack():
    with SlackStandIn() as standin:
        yield standin


def slack_app(slack):
    """The real Flask app with Slack pointed at the stand-in, on the current settings
    (no Redis: work is done inline, so a test sees it done)."""
    from web import create_app

    settings = config.settings().with_(slack_signing_secret=SECRET, slack_bot_token="xoxb-test",
                                       slack_api_url=slack.api_url,
                                       redis_url="redis://127.0.0.1:1/0")
    app = create_app(settings)
    wiring.inline()
    outbound.reset_senders()
    return app.test_client()


@pytest.fixture
def web(sqlite_database, slack):
    return slack_app(slack)


@pytest.fixture
def smith(sqlite_database):
    firm = firms.create("Smith & Co", admin_email="ann@smith.example",
                        admin_password="correct horse 1")
    firms.add_staff(firm, "bob@smith.example", "correct horse 2", role="staff")
    assert access.connect(TEAM, "UANN", "ann@smith.example", "correct horse 1").ok
    clients.add(firm, "Maria Gonzalez", phone="2125550134")
    return firm


@pytest.fixture
def other(sqlite_database, smith):
    firm = firms.create("Other LLP", admin_email="olga@other.example",
                        admin_password="correct horse 3")
    clients.add(firm, "Olga Client", phone="2125550199", email="olga@client.example")
    assert access.connect(OTHER_TEAM, "UOLGA", "olga@other.example", "correct horse 3").ok
    return firm

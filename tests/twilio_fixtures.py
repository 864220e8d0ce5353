"""Fixtures for the Twilio tests: the stand-in, and settings that send texts to it.

`twilio_settings` composes with `database` / `sqlite_database` in any argument
order (it sets those up first when the test uses them), and returns a function to
change more settings on top: `twilio_settings(twilio_messaging_service_sid="MG…")`.
"""

from __future__ import annotations

import pytest

from core.messaging import outbound
from core.platform import config
from tests.twilio_standin import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, TwilioStandIn


@pytest.fixture
def twilio():
    with TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN) as standin:
        yield standin


@pytest.fixture
def twilio_settings(request, twilio):
    for name in ("database", "sqlite_database"):
        if name in request.fixturenames:
            request.getfixturevalue(name)  # its config.use() first, ours on top
            break
    before = config.settings()
    base = before.with_(twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN,
                        twilio_from_number=FROM_NUMBER, twilio_messaging_service_sid="",
                        twilio_api_url=twilio.url)

    def install(**changes) -> config.Settings:
        installed = config.use(base.with_(**changes))
        outbound.reset_senders()
        return installed

    install()
    yield install
    config.use(before)
    outbound.reset_senders()

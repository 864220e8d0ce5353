"""Fixtures for the Plaid tests: the stand-in, settings that point the real SDK at it,
and the app (test client) wired as production wires it. A test module imports the
fixtures it uses by name."""

from __future__ import annotations

import pytest

import wiring
from core.messaging import outbound
from core.platform import config
from tests.plaid_standin import CLIENT_ID, SECRET, PlaidStandIn


@pytest.fixture
def plaid():
    with PlaidStandIn() as standin:
        yield standin


@pytest.fixture
def plaid_settings(request, plaid):
    """The current test database's settings, with BANK_PROVIDER=plaid at the stand-in."""
    for name in ("database", "sqlite_database"):
        if name in request.fixturenames:
            request.getfixturevalue(name)
            break
    before = config.settings()
    installed = config.use(before.with_(
        bank_provider="plaid", plaid_client_id=CLIENT_ID, plaid_secret=SECRET,
        plaid_api_url=plaid.url, redis_url="redis://127.0.0.1:1/0"))
    yield installed
    config.use(before)
    outbound.reset_senders()


@pytest.fixture
def plaid_web(plaid_settings):
    """The real Flask app on those settings, without a job queue (work done inline)."""
    from web import create_app

    app = create_app(plaid_settings)
    wiring.inline()
    return app.test_client()

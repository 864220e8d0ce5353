"""The read API as a client uses it: the real Flask app, tokens exchanged for a staff
member's email and password (`firm`'s admin, Ann, by default)."""

from __future__ import annotations

import pytest

import wiring
from core.platform import config

PASSWORD = "correct horse battery"  # `firm`'s admin's (tests/conftest.py)


@pytest.fixture
def api(clock, firm):
    from web import create_app

    app = create_app(config.settings().with_(redis_url="redis://127.0.0.1:1/0", api_rate=1000))
    wiring.inline()
    return app.test_client()


def exchange(api, email="ann@smith.example", password=PASSWORD, **more):
    return api.post("/api/v1/tokens", json={"email": email, "password": password, **more})


def token_for(api, email="ann@smith.example", password=PASSWORD) -> dict:
    reply = exchange(api, email, password)
    assert reply.status_code == 201, reply.json
    return {"Authorization": f"Bearer {reply.json['token']}"}

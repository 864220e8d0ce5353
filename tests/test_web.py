"""The web app's frame: health check and the local outbox page."""

from __future__ import annotations

from core.firms import firms
from core.invitations import clients, invites


def test_healthz_reports_database_and_redis(sqlite_database):
    from core.platform import config
    from web import create_app

    app = create_app(config.settings())
    reply = app.test_client().get("/healthz")
    assert reply.status_code == 200, reply.json
    assert reply.json == {"database": "ok", "redis": "ok", "status": "ok"}

    down = create_app(config.settings().with_(redis_url="redis://127.0.0.1:1/0"))
    reply = down.test_client().get("/healthz")
    assert reply.status_code == 503
    assert reply.json["redis"] == "unavailable"


def test_outbox_page_shows_messages_to_this_machine_only(sqlite_database):
    from core.platform import config
    from web import create_app

    firm = firms.create("Smith & Co", admin_email="a@s.example", admin_password="x" * 12)
    invites.send(clients.add(firm, "Maria Gonzalez", phone="2125550134"), "sms")
    app = create_app(config.settings())
    page = app.test_client().get("/outbox")
    assert page.status_code == 200
    assert "Hi Maria, Smith &amp; Co invites you" in page.text
    remote = app.test_client().get("/outbox", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert remote.status_code == 404
    tunnel = app.test_client().get("/outbox", headers={"X-Forwarded-For": "203.0.113.9"})
    assert tunnel.status_code == 404  # a tunnel or proxy on this machine: not "this machine"

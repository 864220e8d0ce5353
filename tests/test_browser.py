"""End to end in headless Chromium on a phone-sized screen: from the link in the
text, accept, add a pre-selected bank, restore a broken one — over plain http on
the development server, and over https under gunicorn as the Procfile runs it
(with a certificate made here, which Chromium is told to accept). Screenshots of
each step go to test-output/browser/<scheme>/."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

import wiring
from core.banking import connections
from core.firms import firms
from core.invitations import clients, invites
from core.messaging import outbox
from core.platform import config, tokens
from core.records import BankConnection
from tests.https_server import GunicornTLS

SHOTS = Path(__file__).resolve().parents[1] / "test-output" / "browser"
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def http_server(sqlite_database):
    from web import create_app

    server = make_server("127.0.0.1", 0, None, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    app = create_app(config.settings().with_(public_base_url=base,
                                             redis_url="redis://127.0.0.1:1/0"))
    wiring.inline()
    server.app = app
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base
    server.shutdown()


@pytest.fixture
def https_server(sqlite_database, tmp_path):
    with GunicornTLS(config.settings(), tmp_path) as server:
        config.use(config.settings().with_(public_base_url=server.base))
        yield server


@pytest.fixture(params=["http", "https"])
def live_server(request):
    if request.param == "http":
        yield request.getfixturevalue("http_server"), None
    else:
        server = request.getfixturevalue("https_server")
        yield server.base, server


def test_a_client_accepts_adds_and_restores_on_a_phone(live_server, browser):
    base, server = live_server
    shots = SHOTS / base.split(":")[0]
    shots.mkdir(parents=True, exist_ok=True)
    firm = firms.create("Smith & Co", admin_email="a@s.example", admin_password="x" * 12)
    client = clients.add(firm, "Maria Gonzalez", phone="2125550134", banks=["Chase"])
    sent = invites.send(client, "sms")
    token = tokens.unseal(sent.invite.token_sealed)
    link = re.search(r"https?://\S+/i/\S+", outbox.text(sent.message)).group(0)
    assert link == f"{base}/i/{token}"  # the link in the text Maria got

    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True,
                                  ignore_https_errors=True)
    page = context.new_page()
    page.goto(link)
    assert page.get_by_role("heading", name="Hi Maria").is_visible()
    page.screenshot(path=shots / "1-link.png", full_page=True)

    page.get_by_role("button", name="Accept and continue").click()
    page.wait_for_url("**/i/account")
    assert page.get_by_text("No banks connected yet").is_visible()
    page.screenshot(path=shots / "2-account.png", full_page=True)

    page.get_by_role("link", name="Add a bank").click()
    page.get_by_role("link", name="Chase").click()
    page.get_by_label("Chase username").fill("user_good")
    page.get_by_label("Password").fill("pass_good")
    page.screenshot(path=shots / "3-credentials.png", full_page=True)
    page.get_by_role("button", name="Connect").click()
    page.wait_for_url("**/i/account/done")
    assert page.get_by_text("Chase is connected.").is_visible()
    assert page.get_by_role("heading", name="You're done").is_visible()
    page.screenshot(path=shots / "4-connected.png", full_page=True)

    ally = BankConnection.create(client=client, institution_id="ally-bank",
                                 institution_name="Ally Bank")
    connections.mark_broken(ally, "the bank asked to sign in again")
    page.reload()
    assert page.get_by_text("Needs restoring", exact=True).is_visible()
    page.screenshot(path=shots / "5-needs-restoring.png", full_page=True)
    page.get_by_role("link", name="Restore Ally Bank").click()
    page.get_by_label("Ally Bank username").fill("user_good")
    page.get_by_label("Password").fill("pass_good")
    page.get_by_role("button", name="Restore").click()
    page.wait_for_url("**/i/account/done")
    assert page.get_by_text("Ally Bank is working again.").is_visible()
    page.screenshot(path=shots / "6-restored.png", full_page=True)
    assert [c.status for c in BankConnection.select()] == ["active", "active"]
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], "the page scrolls sideways on a phone"
    if server is not None:  # gunicorn's access log: every request, no working link
        log = server.access_log()
        assert f"/i/{token[:4]}…" in log and "/i/account" in log
        assert token not in log

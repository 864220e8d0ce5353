"""End to end in headless Chromium on a phone-sized screen: open the link,
accept, add a pre-selected bank, restore a broken one. Screenshots of each step
go to test-output/browser/."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from core import clients, config, connections, firms, invites, tokens
from core.models import BankConnection

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = Path(__file__).resolve().parents[1] / "test-output" / "browser"
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def live_server(sqlite_database):
    from jobs import queues
    from web import create_app

    server = make_server("127.0.0.1", 0, None, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    app = create_app(config.settings().with_(public_base_url=base,
                                             redis_url="redis://127.0.0.1:1/0"))
    queues.uninstall()
    server.app = app
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base
    server.shutdown()


@pytest.fixture
def browser():
    if not CHROMIUM:
        if os.environ.get("CI"):
            pytest.fail("Chromium is not installed (apt-get install chromium)")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield chromium
        chromium.close()


def test_a_client_accepts_adds_and_restores_on_a_phone(live_server, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    firm = firms.create("Smith & Co", admin_email="a@s.example", admin_password="x" * 12)
    client = clients.add(firm, "Maria Gonzalez", phone="2125550134", banks=["Chase"])
    invite = invites.send(client, "sms").invite
    link = f"{live_server}/i/{tokens.unseal(invite.token_sealed)}"

    page = browser.new_page(viewport=PHONE, is_mobile=True, has_touch=True)
    page.goto(link)
    assert page.get_by_role("heading", name="Hi Maria").is_visible()
    page.screenshot(path=SHOTS / "1-link.png", full_page=True)

    page.get_by_role("button", name="Accept and continue").click()
    page.wait_for_url("**/i/account")
    assert page.get_by_text("No banks connected yet").is_visible()
    page.screenshot(path=SHOTS / "2-account.png", full_page=True)

    page.get_by_role("link", name="Add a bank").click()
    page.get_by_role("link", name="Chase").click()
    page.get_by_label("Chase username").fill("user_good")
    page.get_by_label("Password").fill("pass_good")
    page.screenshot(path=SHOTS / "3-credentials.png", full_page=True)
    page.get_by_role("button", name="Connect").click()
    page.wait_for_url("**/i/account")
    assert page.get_by_text("Chase is connected.").is_visible()
    page.screenshot(path=SHOTS / "4-connected.png", full_page=True)

    ally = BankConnection.create(client=client, institution_id="ally-bank",
                                 institution_name="Ally Bank")
    connections.mark_broken(ally, "the bank asked to sign in again")
    page.reload()
    assert page.get_by_text("Needs restoring", exact=True).is_visible()
    page.screenshot(path=SHOTS / "5-needs-restoring.png", full_page=True)
    page.get_by_role("link", name="Restore Ally Bank").click()
    page.get_by_label("Ally Bank username").fill("user_good")
    page.get_by_label("Password").fill("pass_good")
    page.get_by_role("button", name="Restore").click()
    page.wait_for_url("**/i/account")
    assert page.get_by_text("Ally Bank is working again.").is_visible()
    page.screenshot(path=SHOTS / "6-restored.png", full_page=True)
    assert [c.status for c in BankConnection.select()] == ["active", "active"]
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], "the page scrolls sideways on a phone"

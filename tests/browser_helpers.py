"""What the browser tests of the client's account share: headless Chromium on a
phone-sized screen, the web process under gunicorn over https (`GunicornTLS`), with
its texts going to the Twilio stand-in, screenshots, and the accessibility check.

The check is axe-core, a pinned copy shipped in `tests/axe/` (never fetched): each
page it runs on gets a JSON report beside the screenshots
(`test-output/browser/https/axe/<page>.json`), and a page with a serious or critical
violation fails the test."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import struct
import zlib
from pathlib import Path

import pytest

from core.firms import firms
from core.invitations import clients, invites
from core.messaging import outbound
from core.platform import config, tokens
from tests.https_server import GunicornTLS
from tests.twilio_standin import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = Path(__file__).resolve().parents[1] / "test-output" / "browser" / "https"
PHONE = {"width": 390, "height": 844}
AXE = Path(__file__).with_name("axe") / "axe.min.js"
AXE_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
SERIOUS = {"serious", "critical"}


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


def phone(browser, **options):
    """A new phone-sized page (its own cookies: a second phone)."""
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True,
                                  ignore_https_errors=True, **options)
    return context.new_page()


@contextlib.contextmanager
def served(tmp_path, twilio=None, **env):
    """The web process as the Procfile runs it, over https; texts to the Twilio
    stand-in when one is given (this process sends to it too)."""
    if twilio is not None:
        env.update(TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
                   TWILIO_FROM_NUMBER=FROM_NUMBER, TWILIO_API_URL=twilio.url)
    before = config.settings()
    with GunicornTLS(before, tmp_path, env) as server:
        changes = {"public_base_url": server.base}
        if twilio is not None:
            changes.update(twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN,
                           twilio_from_number=FROM_NUMBER, twilio_api_url=twilio.url)
        config.use(before.with_(**changes))
        outbound.reset_senders()
        try:
            yield server
        finally:
            config.use(before)
            outbound.reset_senders()


def invited(name="Maria Gonzalez", phone_number="2125550134", *, firm=None, by=None, **fields):
    """A client invited by text, and the link in it."""
    firm = firm or firms.create("Smith & Co", admin_email="a@s.example", admin_password="x" * 12)
    client = clients.add(firm, name, phone=phone_number, **fields)
    sent = invites.send(client, "sms", by=by)
    base = config.settings().public_base_url
    return client, f"{base}/i/{tokens.unseal(sent.invite.token_sealed)}"


def code_texted(twilio, to: str) -> str:
    """The sign-in code in the latest text to `to`."""
    body = twilio.wait_for(1, to=to)[-1].body
    assert "sign-in code" in body, body
    return re.search(r"\b(\d{6})\b", body).group(1)


class Checked:
    """Screenshots and axe reports of the pages a test goes through."""

    def __init__(self, folder: str):
        self.folder = SHOTS / folder
        (self.folder / "axe").mkdir(parents=True, exist_ok=True)
        assert hashlib.sha256(AXE.read_bytes()).hexdigest() == AXE_SHA256, \
            "tests/axe/axe.min.js is not the pinned copy (tests/axe/README.md)"
        self.source = AXE.read_text()
        self.pages: dict[str, list[dict]] = {}

    def page(self, page, name: str) -> list[dict]:
        """Screenshot `page` and check it with axe: its serious and critical violations."""
        page.screenshot(path=self.folder / f"{name}.png", full_page=True)
        if not page.evaluate("() => typeof window.axe !== 'undefined'"):
            page.evaluate(self.source)  # through the DevTools protocol: no CSP change needed
        result = page.evaluate(
            "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", AXE_TAGS)
        report = {"url": re.sub(r"/i/[\w-]{22}", "/i/<token>", page.url),
                  "axe": result["testEngine"],
                  "violations": result["violations"], "passes": len(result["passes"]),
                  "incomplete": [v["id"] for v in result["incomplete"]]}
        (self.folder / "axe" / f"{name}.json").write_text(json.dumps(report, indent=1))
        bad = [{"page": name, "rule": v["id"], "impact": v["impact"],
                "nodes": [n["target"] for n in v["nodes"]][:5]}
               for v in result["violations"] if v["impact"] in SERIOUS]
        self.pages[name] = bad
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{name} scrolls sideways on a phone"
        return bad

    def assert_clean(self) -> None:
        summary = {name: len(bad) for name, bad in self.pages.items()}
        (self.folder / "axe" / "summary.json").write_text(json.dumps(summary, indent=1))
        problems = [v for bad in self.pages.values() for v in bad]
        assert problems == [], json.dumps(problems, indent=1)


def png(width: int = 120, height: int = 40, rgb=(10, 125, 79)) -> bytes:
    """A small solid PNG (a firm's logo, served to the browser by the test)."""
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))

"""`GET /outbox`: the local outbox as a page, for trying things on one machine.

Only when no real SMS or email sender is configured, and only to this machine
(the page shows working links): a request that came through any proxy — a
tunnel on this machine too — is refused, whatever PROXY_HOPS says."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, request

from core.messaging import outbox

from . import security

bp = Blueprint("outbox", __name__)
LOCAL = {"127.0.0.1", "::1"}


@bp.after_request
def _headers(response):
    # The page's own <style>; it is only ever shown on this machine.
    response.headers["Content-Security-Policy"] = security.page_policy("'unsafe-inline'")
    return response


def _from_this_machine() -> bool:
    peer = request.environ.get("werkzeug.proxy_fix.orig", {}).get("REMOTE_ADDR",
                                                                  request.remote_addr)
    forwarded = any(h in request.headers for h in ("X-Forwarded-For", "Forwarded"))
    return peer in LOCAL and not forwarded


@bp.get("/outbox")
def show():
    settings = current_app.config["LEDGERSYNC"]
    local_only = settings.sms_provider == settings.email_provider == "outbox"
    if not local_only or not _from_this_machine():
        abort(404)
    return render_template("outbox.html", messages=outbox.latest(limit=50),
                           text=outbox.text)

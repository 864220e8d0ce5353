"""`GET /outbox`: the local outbox as a page, for trying things on one machine.

Only when no real SMS or email sender is configured, and only to this machine
(the page shows working links)."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, request

from core import outbox

bp = Blueprint("outbox", __name__)
LOCAL = {"127.0.0.1", "::1"}


@bp.get("/outbox")
def show():
    settings = current_app.config["LEDGERSYNC"]
    local_only = "outbox" in settings.sms_backend and "outbox" in settings.email_backend
    if not local_only or request.remote_addr not in LOCAL:
        abort(404)
    return render_template("outbox.html", messages=outbox.latest(limit=50),
                           text=outbox.text)

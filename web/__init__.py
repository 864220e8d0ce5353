"""The Flask app factory: drivers hang their blueprints here.

`POST /slack/events` (bot/), `POST /sms/inbound` and `/sms/status` (sms/), the
client pages under `/i/` (signing in again under `/account/`), the read API under
`/api/v1/`, `POST /banks/plaid/webhook` (plaid_adapter/), `GET /healthz` and
`GET /metrics` (this package).
Security headers, proxies and same-origin posts: `security.py`; error pages: `errors.py`;
request ids, measurements and `/metrics`: `observe.py`; a client's page that waited too
long behind the proxy answered "busy" at once: `busy.py`.
"""

from __future__ import annotations

import contextlib

from flask import Flask, g, request
from flask_wtf.csrf import CSRFProtect

import wiring
from core.platform import config, db

from . import (
    busy,
    client_pages,
    errors,
    health,
    locale,
    observe,
    outbox_page,
    security,
    sign_in,
    unsubscribe,
)

csrf = CSRFProtect()


def create_app(settings: config.Settings | None = None) -> Flask:
    settings = wiring.wire(settings or config.settings())
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key, LEDGERSYNC=settings, MAX_CONTENT_LENGTH=1024 * 1024,
        SESSION_COOKIE_NAME="ls_session", SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_base_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=settings.client_session_max, WTF_CSRF_TIME_LIMIT=None,
    )
    observe.install(app, settings)  # first: every answer is measured
    security.install(app, settings)
    csrf.init_app(app)
    _database_per_request(app)
    errors.install(app)
    locale.install(app)  # the client pages' language (Flask-Babel, core's catalogue)
    for blueprint in (health.bp, outbox_page.bp, client_pages.bp, sign_in.bp):
        app.register_blueprint(blueprint)
    app.register_blueprint(csrf.exempt(unsubscribe.bp))  # one-click: see web/unsubscribe.py
    from . import api, bank_handoff

    app.register_blueprint(bank_handoff.bp)  # a hosted bank link's pages (Plaid Hosted Link)
    app.register_blueprint(csrf.exempt(api.bp))  # /api/v1: bearer tokens, no cookies
    if settings.bank_provider_name == "plaid":
        from plaid_adapter import webhooks as plaid_webhooks

        app.register_blueprint(csrf.exempt(plaid_webhooks.bp))
    from sms import webhooks

    csrf.exempt(webhooks.bp)
    app.register_blueprint(webhooks.bp)
    if settings.slack_signing_secret and settings.slack_mode != "off":
        import bot

        slack = bot.blueprint(settings)
        csrf.exempt(slack)
        app.register_blueprint(slack)
    if settings.slack_mode != "off":
        from . import connect_account

        app.register_blueprint(connect_account.bp)
    busy.install(app, settings)  # last: the outermost layer, before ProxyFix and Flask
    return app


def _database_per_request(app: Flask) -> None:
    """Each request is a unit of work on its thread's connection (`db.kept`: opened once
    a thread, checked before use after a while unused or a failure, no transaction left
    open after it) — opening one a request cost more than the rest of a client's page.
    `/healthz` opens its own, so that it can answer 503 when the database is down;
    `/metrics` needs none."""

    @app.before_request
    def _open_db():
        if request.endpoint not in {"health.healthz", "metrics.scrape"}:
            unit = g._db_unit = contextlib.ExitStack()
            unit.enter_context(db.kept())

    @app.teardown_request
    def _close_db(exc):
        unit = g.pop("_db_unit", None)
        if unit is not None:
            unit.__exit__(type(exc) if exc else None, exc, None)

"""The Flask app factory: drivers hang their blueprints here.

`POST /slack/events` (bot/), `POST /sms/inbound` and `/sms/status` (sms/), the
client pages under `/i/` and `GET /healthz` (this package).
"""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, render_template
from flask_wtf.csrf import CSRFError, CSRFProtect

from core import config, db, runtime

from . import client_pages, health, outbox_page

csrf = CSRFProtect()

ERRORS = {
    400: ("That didn't work", "The page was open too long or was sent twice. Go back, "
                              "reload it and try again."),
    403: ("Not allowed", "You can't do that with this account."),
    404: ("Not found", "There is nothing here. Open the link from your message again."),
    429: ("Too many tries", "Too many links that don't work were opened from here. "
                            "Wait ten minutes, then open the link from your message."),
}


def create_app(settings: config.Settings | None = None) -> Flask:
    settings = runtime.start(settings or config.settings())
    from jobs import queues

    queues.install(settings)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key, LEDGERSYNC=settings, MAX_CONTENT_LENGTH=1024 * 1024,
        SESSION_COOKIE_NAME="ls_session", SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_base_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(days=7), WTF_CSRF_TIME_LIMIT=None,
    )
    csrf.init_app(app)
    _database_per_request(app)
    _error_pages(app)
    for blueprint in (health.bp, outbox_page.bp, client_pages.bp):
        app.register_blueprint(blueprint)
    from sms import webhooks

    csrf.exempt(webhooks.bp)
    app.register_blueprint(webhooks.bp)
    if settings.slack_signing_secret and settings.slack_bot_token:
        import bot

        slack = bot.blueprint(settings)
        csrf.exempt(slack)
        app.register_blueprint(slack)
    return app


def _database_per_request(app: Flask) -> None:
    @app.before_request
    def _open_db():
        db.database.connect(reuse_if_open=True)

    @app.teardown_request
    def _close_db(_exc):
        if not db.database.is_closed():
            db.database.close()


def _error_pages(app: Flask) -> None:
    def page(code):
        title, text = ERRORS[code]
        return render_template("error.html", title=title, text=text, firm=None), code

    for code in ERRORS:
        app.register_error_handler(code, lambda _e, code=code: page(code))
    app.register_error_handler(CSRFError, lambda _e: page(400))

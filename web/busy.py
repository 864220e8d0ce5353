"""A client's page that can't be answered soon is answered "busy" at once: better a
short page saying to try again in a minute than a phone left loading for ten seconds
and more (the same choice as Slack's busy answer, `bot/deferral.py`).

How long a request has waited is known behind a proxy that stamps each request as it
arrives with `X-Request-Start` (Heroku's router does; nginx with
`proxy_set_header X-Request-Start "t=${msec}";`), replacing any a client sent. With
PAGE_BUSY_AFTER set (say `3s`; off by default: a proxy that doesn't set the header
would pass on a client's) and PROXY_HOPS, a client page (`/i/…`, `/account/…`) taken
up later than that after its stamp gets a small 503 page in the browser's language
(`Accept-Language`), `Retry-After: 60`, before Flask does any work for it: nothing is
read, nothing written, so a server past its capacity spends little on what it can't
serve in time. Every stamped request's wait is measured (`ledgersync_http_queue_seconds`);
the busy pages are counted (`ledgersync_pages_busy_total`, and in
`ledgersync_http_requests_total` as route `busy`). Slack's, Twilio's and Plaid's
webhooks and the API are never turned away here: Slack has its own busy answer, and a
text or a receipt refused would be lost.

The proxy's clock and ours must agree (NTP): one running behind ours by more than
PAGE_BUSY_AFTER would make every page busy. A stamp more than an hour old is taken for
clocks out of step, not a queue, and ignored (logged once).
"""

from __future__ import annotations

import logging

from flask import Flask
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from core.platform import clock, i18n
from core.platform.config import Settings
from ops import metrics

from . import security

log = logging.getLogger(__name__)
PAGES = ("/i/", "/account/")  # the client's pages
RETRY_AFTER = "60"  # (the page says "in a minute")
SKEWED = 3600.0  # seconds: a longer wait is a clock out of step


def install(app: Flask, settings: Settings) -> None:
    """Outermost of the web's WSGI layers, so that a busy answer costs the least."""
    if settings.proxy_hops and settings.page_busy_after:
        app.wsgi_app = BusyPages(app.wsgi_app, app, settings)


def waited(stamp: str | None, now: float) -> float | None:
    """Seconds from the proxy's stamp to `now` (0 for a stamp from a clock ahead of
    ours): `t=1700000000.123` (nginx's `${msec}`) or a bare number of seconds,
    milliseconds (Heroku's router), microseconds (Apache's `%t`) or nanoseconds. None
    without a readable stamp."""
    if not stamp:
        return None
    try:
        value = float(stamp.strip().removeprefix("t="))
    except ValueError:
        return None
    # Now is about 1.8e9 seconds, 1.8e12 ms, 1.8e15 µs, 1.8e18 ns since 1970.
    for unit, beyond in ((1e9, 1e17), (1e6, 1e14), (1e3, 1e11)):
        if value > beyond:
            value /= unit
            break
    return max(0.0, now - value)


class BusyPages:
    def __init__(self, wsgi_app, app: Flask, settings: Settings):
        self.wsgi_app = wsgi_app
        self.after = settings.page_busy_after.total_seconds()
        self.headers = [("Content-Type", "text/html; charset=utf-8"),
                        ("Retry-After", RETRY_AFTER), ("Cache-Control", "no-store"),
                        ("Content-Security-Policy", security.page_policy()),
                        *security.FRAME_AND_TYPE.items()]
        if settings.public_base_url.startswith("https://"):
            self.headers.append(("Strict-Transport-Security", security.HSTS))
        stylesheet = f"{app.static_url_path}/client.css"
        template = app.jinja_env.get_template("busy.html")
        self.pages = {lang: template.render(page_lang=lang, stylesheet=stylesheet).encode()
                      for lang in i18n.LANGUAGES}  # made once, outside any request
        self.skew_told = False

    def __call__(self, environ, start_response):
        wait = waited(environ.get("HTTP_X_REQUEST_START"), clock.now().timestamp())
        if wait is None or wait > SKEWED:
            if wait is not None and not self.skew_told:
                self.skew_told = True
                log.warning("X-Request-Start is %.0f s behind this clock: the proxy's clock "
                            "and ours differ; requests' waits are not measured", wait)
            return self.wsgi_app(environ, start_response)
        metrics.HTTP_QUEUED.observe(wait)
        if wait <= self.after or not environ.get("PATH_INFO", "").startswith(PAGES):
            return self.wsgi_app(environ, start_response)
        method = environ.get("REQUEST_METHOD", "GET")
        metrics.PAGES_BUSY.inc()
        metrics.http_answered("busy", method, 503, 0.0)  # (its own time: next to none)
        body = self.pages[_language(environ.get("HTTP_ACCEPT_LANGUAGE"))]
        start_response("503 Service Unavailable",
                       [*self.headers, ("Content-Length", str(len(body)))])
        return [b"" if method == "HEAD" else body]


def _language(accepted: str | None) -> str:
    best = parse_accept_header(accepted, LanguageAccept).best_match(list(i18n.LANGUAGES))
    return best or i18n.DEFAULT

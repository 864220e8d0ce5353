"""What every response and every form post gets, as production serves them: https
behind a proxy.

- **Proxies.** `PROXY_HOPS` (default 0) is how many proxies in front of us may be
  believed: werkzeug's `ProxyFix` then takes the client's address and the scheme
  from that many `X-Forwarded-For`/`-Proto` entries, and nothing more (a client
  can't claim an address by sending the header itself).
- **Headers.** nosniff, no framing, no referrer on every response; HSTS when
  served over https; the pages' strict Content-Security-Policy (`page_policy`: no
  script, nothing from elsewhere but https images) unless a response sets its own.
- **Odd requests.** A query string that isn't UTF-8 is a 400 (werkzeug, and Bolt,
  would raise reading it); an `<int:…>` in a route takes ASCII digits only, at most
  18 of them (werkzeug's own also takes '٣', and a number larger than a row id can
  be is an error on SQLite): anything else is that route's 404.
- **Same-origin posts.** Pages with a link token send `Referrer-Policy:
  no-referrer`, so browsers send no `Referer` and `Origin: null` on their own
  forms. Flask-WTF's strict Referer check for https (`WTF_CSRF_SSL_STRICT`)
  would refuse every such post, so it is off, deliberately; in its place a post
  must come from our own pages by the browser's Fetch Metadata (`Sec-Fetch-Site`),
  or, from a browser without it, by an `Origin` that is ours. The CSRF token
  (bound to the session) and the SameSite=Lax cookie still guard every form.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, abort, request
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from core.platform.config import Settings

HSTS = "max-age=31536000"
FRAME_AND_TYPE = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
SAFE_SITES = {"same-origin", "none"}  # our own page, or the user typed/bookmarked it


def install(app: Flask, settings: Settings) -> None:
    if settings.proxy_hops:
        hops = settings.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)
    app.config["WTF_CSRF_SSL_STRICT"] = False  # replaced by `same_origin_post` below
    app.url_map.converters["int"] = RowId  # before any route is added
    app.before_request(_readable)
    app.after_request(_headers)


class RowId(IntegerConverter):
    """`<int:…>`: ASCII digits, no more than any row id has."""

    regex = r"[0-9]{1,18}"


def _readable() -> None:
    try:
        request.query_string.decode()
    except UnicodeDecodeError:
        abort(400)


def page_policy(styles: str = "'self'") -> str:
    """Our pages' Content-Security-Policy: our stylesheet (and `styles`), images of
    ours or over https (a firm's logo), forms posted to us; no script, no framing."""
    return (f"default-src 'none'; style-src {styles}; img-src 'self' https:; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def _headers(response):
    for name, value in FRAME_AND_TYPE.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Content-Security-Policy", page_policy())
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response


DEFAULT_PORTS = {"https": 443, "http": 80}


def origin_of(url: str) -> str:
    """scheme://host[:port], lower-cased, without the scheme's default port (as
    browsers send `Origin`)."""
    parts = urlsplit(url.strip())
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        return "invalid"
    keep = port is not None and port != DEFAULT_PORTS.get(scheme)
    return f"{scheme}://{host}:{port}" if keep else f"{scheme}://{host}"


def same_origin_post(public_base_url: str) -> None:
    """403 for a form post that a browser says came from another site."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        if site not in SAFE_SITES:
            abort(403)
        return
    origin = request.headers.get("Origin")
    if origin and origin != "null" and origin_of(origin) != origin_of(public_base_url):
        abort(403)

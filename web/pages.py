"""What every client page shares (the link's pages under `/i/`, signing in under
`/account/`): form posts only from our own pages, the visitor's language, no caching,
a strict Content-Security-Policy, the firm's branding in the header (and its phone and
email in the footer), and a throttle per address.

The CSP allows images over https (a firm's logo) and, when the firm has a colour,
one inline `<style>` carrying this response's nonce; nothing else but our own
stylesheet, no script at all.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from flask import Blueprint, abort, current_app, g, request

from core.firms import firm_settings
from core.records import Firm
from web.throttle import Throttle

from . import locale, security

CLIENT_PAGES: set[str] = set()  # the blueprints of the client's pages


def install(bp: Blueprint) -> None:
    CLIENT_PAGES.add(bp.name)
    bp.before_request(_before)
    bp.after_request(_headers)


def in_their_language() -> None:
    """An error page of the client's pages that came before their hooks (a form's
    CSRF token refused): in the visitor's language, with the switch."""
    if request.blueprint not in CLIENT_PAGES or g.get("page_lang"):
        return
    try:
        request.query_string.decode()
    except UnicodeDecodeError:  # refused for that (security.py): nothing in it is read
        return
    g.csp_nonce = secrets.token_urlsafe(16)
    locale.for_visitor()


def _before():
    if request.method == "POST":
        security.same_origin_post(current_app.config["LEDGERSYNC"].public_base_url)
    g.csp_nonce = secrets.token_urlsafe(16)
    locale.for_visitor()


def _headers(response):
    response.headers["Cache-Control"] = "no-store"
    nonce = g.get("csp_nonce")
    colored = nonce and g.get("brand") and g.brand.color
    styles = f"'self' 'nonce-{nonce}'" if colored else "'self'"
    response.headers["Content-Security-Policy"] = security.page_policy(styles)
    return response


# --- the firm, as the header shows it ---------------------------------------------------


@dataclass(frozen=True)
class Brand:
    name: str
    logo_url: str | None
    color: str | None
    text_color: str | None
    contact: firm_settings.Contact | None = None  # the footer's phone (tap to call) and email


def brand(firm: Firm | None) -> None:
    """This page is about `firm`: its name, logo and colour in the header, its phone
    and email in the footer."""
    if firm is None:
        return
    color = firm.brand_color
    g.brand = Brand(firm.name, firm.logo_url, color,
                    firm_settings.header_text_color(color) if color else None, contact(firm))


def contact(firm: Firm) -> firm_settings.Contact:
    """The firm's phone and email to check with (`firm_settings.contact`), looked up once
    a request (the header's footer and the link page both show it)."""
    known = g.get("contact")
    if known is None or known[0] != firm.id:
        known = g.contact = (firm.id, firm_settings.contact(firm))
    return known[1]


def throttle(name: str, limit: int, window: int) -> Throttle:
    """One throttle per name, per app (shared by its threads; counted in Redis)."""
    key = f"throttle-{name}"
    if key not in current_app.extensions:
        current_app.extensions[key] = Throttle(current_app.config["LEDGERSYNC"].redis_url,
                                               limit, window, name)
    return current_app.extensions[key]


def address() -> str:
    # The client's own address: behind a proxy, ProxyFix (PROXY_HOPS) put it here.
    return request.remote_addr or "unknown"


def refuse_if_throttled(throttled: Throttle) -> None:
    if throttled.blocked(address()):
        abort(429)

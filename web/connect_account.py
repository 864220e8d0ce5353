"""The seed's *LedgerSync Integration* form, for a Slack user: `/ledgersync connect`
answers with a button to `/slack/link/<token>` (one time, 10 minutes, for the Slack
user who asked: `core.firms.slack_accounts`). Email and password are typed here, never in Slack.

The first browser to open the page gets a random cookie (HttpOnly, SameSite=Lax,
Secure over https) and owns the page; any other browser is told the link was opened
elsewhere. *Save Integration* answers ✅ or ❌ with the reason and the fix, and the
person is told the same in Slack by DM. A wrong password leaves the page usable until
it expires (`access.connect` throttles the tries); a success spends it. Posts carry a
CSRF token and must come from our own page (`security.same_origin_post`); pages are
not cached and send no referrer. Unknown tokens count against the address, as client
links do (`throttle.py`).
"""

from __future__ import annotations

import secrets

from flask import Blueprint, abort, current_app, make_response, render_template, request

from bot import connect_account as slack_linking
from core.firms import slack_accounts
from core.firms.slack_accounts import LinkRefused
from web.throttle import Throttle

from . import security

bp = Blueprint("slack_link", __name__, url_prefix="/slack/link")
COOKIE = "ls_link"
FIELD_LIMIT = 256
REFUSED_STATUS = {"unknown": 404, "expired": 410, "used": 410, "other_browser": 403}


@bp.before_request
def _same_origin():
    if request.method == "POST":
        security.same_origin_post(_settings().public_base_url)


@bp.after_request
def _headers(response):
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Content-Security-Policy"] = security.page_policy()
    return response


@bp.get("/<token>")
def page(token):
    if request.method == "HEAD":  # a link checker: it doesn't get to own the page
        return "", 200
    _not_throttled()
    secret = request.cookies.get(COOKIE) or secrets.token_urlsafe(32)
    try:
        slack_accounts.opened(token, secret)
    except LinkRefused as refused:
        return _refused(refused)
    response = make_response(render_template("slack_link.html", token=token, firm=None))
    _remember(response, secret)
    return response


@bp.post("/<token>")
def save(token):
    _not_throttled()
    secret = request.cookies.get(COOKIE, "")
    email = request.form.get("email", "")[:FIELD_LIMIT]
    try:
        asked = slack_accounts.opened(token, secret)
        result = slack_accounts.use(token, secret, email,
                             request.form.get("password", "")[:FIELD_LIMIT])
    except LinkRefused as refused:
        return _refused(refused)
    told = slack_linking.tell(asked.team_id, asked.user_id, result)
    if not result.ok:
        return render_template("slack_link.html", token=token, result=result, email=email,
                               firm=None, told=told), 422
    return render_template("slack_link.html", token=token, result=result, told=told,
                           connected=slack_accounts.connected_as(result.staff),
                           firm=result.staff.firm.name)


def _refused(refused: LinkRefused):
    if refused.kind == "unknown":
        _throttle().miss(_address())
    return render_template("slack_link.html", refused=str(refused),
                           firm=None), REFUSED_STATUS[refused.kind]


def _remember(response, secret: str) -> None:
    """The cookie that makes this browser the page's owner, for the page's life."""
    secure = request.is_secure or _settings().public_base_url.startswith("https://")
    response.set_cookie(COOKIE, secret, max_age=int(slack_accounts.LINK_TTL.total_seconds()),
                        path=bp.url_prefix, secure=secure, httponly=True, samesite="Lax")


def _settings():
    return current_app.config["LEDGERSYNC"]


def _address() -> str:
    # Behind a proxy, ProxyFix (PROXY_HOPS) put the client's own address here.
    return request.remote_addr or "unknown"


def _not_throttled() -> None:
    if _throttle().blocked(_address()):
        abort(429)


def _throttle() -> Throttle:
    if "throttle" not in current_app.extensions:  # the client pages' count, shared
        current_app.extensions["throttle"] = Throttle(_settings().redis_url)
    return current_app.extensions["throttle"]

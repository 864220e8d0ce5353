"""Signing in again, under `/account/`: the client gives the phone number or email
their firm has, gets a one-time code (`core.invitations.sign_in`), types it, and is in their
limited account — or, when the address is on file at several firms, chooses which.

The pages answer the same whether or not the address is anyone's. The browser keeps
the attempt's nonce in its session; a code typed anywhere else opens nothing. Per
address (the client's own, behind PROXY_HOPS), asking for codes and typing wrong
ones are throttled on top of core's limits (3 codes an hour per client, 5 tries a
code, 10 wrong codes a day per client from any address).
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from core.invitations import sign_in
from core.platform.errors import InvalidInput
from ops import metrics

from . import client_pages, locale, pages

bp = Blueprint("sign_in", __name__, url_prefix="/account")
pages.install(bp)

ASKS = {"name": "signin-asks", "limit": 10, "window": 3600}  # code requests an hour
WRONG = {"name": "signin-wrong", "limit": 20, "window": 3600}  # wrong codes an hour
ATTEMPT = "signin"  # the session keys of the attempt in this browser
REFUSED = {"wrong": "wrong_code", "ended": "attempt_ended"}  # `ledgersync_signin_refused`


@bp.get("/sign-in")
def start():
    if client_pages.signed_in():
        return redirect(url_for("client.account"))
    return render_template("sign_in.html")


@bp.post("/sign-in")
def ask():
    asks = pages.throttle(**ASKS)
    if asks.blocked(pages.address()):
        return _wait("too_many_asks")
    asks.miss(pages.address())
    try:
        asked = sign_in.ask(request.form.get("address", ""), locale.current())
    except InvalidInput:
        problem = _("Enter the mobile number or the email your firm has for you, like "
                    "(212) 555-0134 or maria@example.com.")
        return render_template("sign_in.html", problem=problem,
                               address=request.form.get("address", "")[:254]), 422
    session[ATTEMPT] = {"nonce": asked.nonce, "shown": asked.shown, "channel": asked.channel,
                        "opted_out": asked.opted_out}
    return redirect(url_for("sign_in.code"))


@bp.get("/sign-in/code")
def code():
    attempt = session.get(ATTEMPT)
    if not attempt:
        return redirect(url_for("sign_in.start"))
    return render_template("sign_in_code.html", attempt=attempt)


@bp.post("/sign-in/code")
def check():
    attempt = session.get(ATTEMPT)
    if not attempt:
        return redirect(url_for("sign_in.start"))
    wrong = pages.throttle(**WRONG)
    if wrong.blocked(pages.address()):
        return _wait("too_many_wrong_codes")
    checked = sign_in.check(attempt.get("nonce"), request.form.get("code", ""))
    if checked.status in REFUSED:
        metrics.SIGNIN_REFUSED.labels(REFUSED[checked.status]).inc()
    if checked.status == "wrong":
        wrong.miss(pages.address())
        return render_template("sign_in_code.html", attempt=attempt,
                               tries_left=checked.tries_left), 422
    if checked.status == "ended":
        wrong.miss(pages.address())
        session.pop(ATTEMPT, None)
        return render_template("sign_in_ended.html"), 410
    if len(checked.clients) == 1:
        return _enter(checked.clients[0])
    return redirect(url_for("sign_in.choose"))


@bp.route("/sign-in/choose", methods=["GET", "POST"])
def choose():
    """The address is on file at several firms: which account to open."""
    nonce = (session.get(ATTEMPT) or {}).get("nonce")
    if request.method == "POST":
        chosen = sign_in.choose(nonce, _number(request.form.get("client")))
        if chosen is not None:
            return _enter(chosen)
    choices = sign_in.choices(nonce)
    if not choices:
        session.pop(ATTEMPT, None)
        return render_template("sign_in_ended.html"), 410
    return render_template("sign_in_choose.html", choices=choices)


def _enter(client):
    client_pages.start(sign_in.enter(client))
    return redirect(url_for("client.account"))


def _number(text: str | None) -> int:
    return int(text) if text and text.isascii() and text.isdigit() and len(text) < 12 else 0


def _wait(reason: str):
    metrics.SIGNIN_REFUSED.labels(reason).inc()
    return render_template("error.html", title=_("Too many tries"),
                           text=_("Too many codes were asked for or typed from here. Wait an "
                                  "hour, or ask the firm that invited you for a new link.")), 429

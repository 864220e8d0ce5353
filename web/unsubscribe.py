"""`/unsubscribe/<token>`: an email's one-click unsubscribe (RFC 8058).

The token (`core.messaging.optouts.unsubscribe_token`) names the address and is signed with
SECRET_KEY; a forged or broken one (odd characters included) is 404 and changes
nothing. GET and HEAD only show a button (link checkers, scanners and previews open
links); only a POST — the button's, or the mail client's own
`List-Unsubscribe=One-Click` — opts the address out of everything.
Exempt from CSRF: mail clients post without a token or a session, and the only
thing a post can do is opt out the very address the signed token names.
"""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request

from core.messaging import optouts
from core.platform import db

bp = Blueprint("unsubscribe", __name__, url_prefix="/unsubscribe")


@bp.after_request
def _headers(response):
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/<token>", methods=["GET", "POST"])
def unsubscribe(token: str):
    address = optouts.address_of_unsubscribe(token)
    if address is None:
        abort(404)
    if request.method != "POST":  # GET, or HEAD (Flask answers HEAD with this route)
        return render_template("unsubscribe.html", address=address, done=False)
    with db.database.atomic():
        optouts.opt_out(address, "email unsubscribe")
    return render_template("unsubscribe.html", address=address, done=True)

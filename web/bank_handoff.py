"""The client's side of a hosted bank link (Plaid Hosted Link), under
`/i/account/bank/`: a page that says where the client is going and sends them to the
provider's own page (a plain link: our pages load no script and keep their strict
Content-Security-Policy), and the completion page the provider sends them back to.

Only for a signed-in client with an account (`client_pages.client_account`), and only
when the provider is a hosted one; the form provider (the sandbox) keeps its own
pages (`client_pages.add_bank`, `restore`), which send here when the provider is hosted.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, session, url_for
from flask_babel import gettext as _

from core.banking import banks, connections, link_sessions
from core.platform.errors import NotFound, Refused
from web.client_pages import client_account

from . import pages

bp = Blueprint("bank_links", __name__, url_prefix="/i/account/bank")
pages.install(bp)
SERVICES = {"plaid": "Plaid"}


def _hosted() -> None:
    if not banks.is_hosted():
        abort(404)


@bp.get("/add")
@client_account
def add():
    _hosted()
    chosen = [banks.by_name(name).name
              for name in session.get("banks") or g.client.banks or []]
    return _hand_off(link_sessions.start(g.client), chosen=chosen)


@bp.get("/restore/<int:connection_id>")
@client_account
def restore(connection_id):
    _hosted()
    try:
        connection = connections.get(g.client, connection_id)
        url = link_sessions.start(g.client, connection)
    except NotFound:
        abort(404)
    except Refused as problem:
        flash(str(problem))
        return redirect(url_for("client.account"))
    return _hand_off(url, connection=connection)


def _hand_off(url: str, *, chosen=(), connection=None):
    service = SERVICES.get(banks.provider_name()) or _("your bank's secure service")
    return render_template("bank_link.html", url=url, chosen=list(chosen),
                           connection=connection, firm=g.client.firm.name, service=service)


@bp.get("/done")
@client_account
def done():
    """Where the provider sends the client back: what their latest session came to
    (`bank_links.back`), or a page that waits for it (202) — or, with nothing open,
    says so."""
    _hosted()
    back = link_sessions.back(g.client)
    if back.status == "done":
        if back.restored:
            flash(_("%(bank)s is working again.", bank=back.banks))
        elif ", " in back.banks:
            flash(_("%(banks)s are connected.", banks=back.banks))
        else:
            flash(_("%(bank)s is connected.", bank=back.banks))
        return redirect(url_for("client.done"))
    if back.status == "exited":
        flash(_(back.message))  # ours from the catalogue, or the provider's own words
        return redirect(url_for("client.account"))
    return render_template("bank_link_done.html", firm=g.client.firm.name,
                           pending=back.pending), 202 if back.pending else 200

"""The client's side, under `/i/`: the invite link's page, accepting, and the
limited Client Account (see its bank connections, add one, restore one).

Opening a link (GET — phones' link previews do it too) changes nothing but the
first-opened time; only the POST of Accept consumes it. Every form carries a CSRF
token and must come from our own pages (`security.same_origin_post`); every page
sends `Referrer-Policy: no-referrer`. Signing in starts a server-side session
(`core.sessions`) that sign-out, a revoked or replaced link, or time ends.
"""

from __future__ import annotations

from functools import wraps

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from core import banks, clock, connections, links, sessions
from core.errors import LedgerSyncError, NotFound
from core.models import Client, ClientAccount
from core.quiet_hours import zone_for

from . import security
from .throttle import Throttle

bp = Blueprint("client", __name__, url_prefix="/i")


@bp.before_request
def _same_origin():
    if request.method == "POST":
        security.same_origin_post(current_app.config["LEDGERSYNC"].public_base_url)


@bp.after_request
def _headers(response):
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    return response


def _throttle() -> Throttle:
    if "throttle" not in current_app.extensions:
        current_app.extensions["throttle"] = Throttle(current_app.config["LEDGERSYNC"].redis_url)
    return current_app.extensions["throttle"]


def _state(token: str):
    # The client's own address: behind a proxy, ProxyFix (PROXY_HOPS) put it here.
    address = request.remote_addr or "unknown"
    if _throttle().blocked(address):
        abort(429)
    state = links.check(token)
    if state.state == "unknown":
        _throttle().miss(address)
    return state


def _dead(state, status: int = 404):
    invite = state.invite
    expired_on = None
    if invite is not None and state.state == "expired":
        expired_on = clock.short_date(invite.expires_at, zone_for(invite.client))
    return render_template("dead.html", state=state, expired_on=expired_on), status


# --- the link ---------------------------------------------------------------------


@bp.get("/<token>")
def link(token):
    state = _state(token)
    if state.state == "accepted" and _signed_in_as(state.invite.client_id):
        return redirect(url_for("client.account"))
    if not state.usable:
        return _dead(state)
    links.opened(token)
    invite = state.invite
    return render_template(
        "link.html", token=token, invite=invite, firm=invite.firm.name,
        first_name=invite.client.first_name,
        expires=clock.short_date(invite.expires_at, zone_for(invite.client)),
    )


@bp.post("/<token>/accept")
def accept(token):
    state = _state(token)
    if not state.usable:
        return _dead(state)
    try:
        accepted = links.accept(token)
    except LedgerSyncError:
        return _dead(links.check(token))
    _sign_in(accepted.invite)
    return redirect(url_for("client.account"))


@bp.post("/<token>/new-link")
def new_link(token):
    state = _state(token)
    if state.usable:
        return redirect(url_for("client.link", token=token))
    if state.invite is None:
        return _dead(state)  # exactly as any unknown link: guessing teaches nothing
    links.request_new_link(token)
    return render_template("asked.html", firm=state.firm_name)


# --- the account --------------------------------------------------------------------


def _sign_in(invite) -> None:
    sessions.end(session.get("sid"), "signed in again")
    session.clear()
    session.permanent = True
    session.update(sid=sessions.start(invite.client_id, invite.id), purpose=invite.purpose,
                   banks=list(invite.banks or []))


def _signed_in_as(client_id: int) -> bool:
    live = sessions.current(session.get("sid"))
    return live is not None and live.client_id == client_id


def client_account(view):
    """The page needs a signed-in client with an account; `g.client` is theirs."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        live = sessions.current(session.get("sid"))
        account = live and ClientAccount.get_or_none(ClientAccount.client == live.client_id)
        if not account:
            session.clear()
            return render_template("signed_out.html"), 403
        g.client = Client.get_by_id(live.client_id)
        return view(*args, **kwargs)

    return wrapper


@bp.get("/account")
@client_account
def account():
    rows = connections.for_client(g.client)
    return render_template("account.html", client=g.client, firm=g.client.firm.name,
                           connections=rows, purpose=session.get("purpose", "connect"),
                           broken=[c for c in rows if c.status == "needs_reconnect"])


@bp.get("/account/add")
@client_account
def add():
    query = request.args.get("q", "")[:100]
    chosen = [banks.by_name(name) for name in session.get("banks") or g.client.banks or []]
    chosen = [i for i in chosen if banks.institution(i.id)]
    return render_template("add.html", firm=g.client.firm.name, chosen=chosen, query=query,
                           results=banks.search(query) if query else [])


@bp.route("/account/add/<institution_id>", methods=["GET", "POST"])
@client_account
def add_bank(institution_id):
    institution = banks.institution(institution_id) or abort(404)
    if request.method == "GET":
        return render_template("credentials.html", institution=institution, action="add")
    outcome = connections.add(g.client, institution.id, **_credentials())
    return _after(outcome, institution, "add")


@bp.route("/account/restore/<int:connection_id>", methods=["GET", "POST"])
@client_account
def restore(connection_id):
    try:
        connection = connections.get(g.client, connection_id)
    except NotFound:
        abort(404)
    if connection.status != "needs_reconnect":
        flash(f"{connection.institution_name} is working; nothing to restore.")
        return redirect(url_for("client.account"))
    institution = banks.Institution(connection.institution_id, connection.institution_name)
    if request.method == "GET":
        return render_template("credentials.html", institution=institution, action="restore",
                               connection=connection)
    outcome = connections.restore(g.client, connection.id, **_credentials())
    return _after(outcome, institution, "restore", connection)


def _credentials() -> dict:
    form = request.form
    if form.get("challenge"):
        return {"challenge": form["challenge"][:200], "code": form.get("code", "")[:20]}
    return {"username": form.get("username", "")[:200], "password": form.get("password", "")[:200]}


def _after(outcome, institution, action, connection=None):
    if outcome.status == "connected":
        flash(outcome.message)
        return redirect(url_for("client.account"))
    status = 200 if outcome.status == "needs_code" else 422
    return render_template("credentials.html", institution=institution, action=action,
                           connection=connection, outcome=outcome), status


@bp.post("/account/sign-out")
def sign_out():
    sessions.end(session.get("sid"))
    session.clear()
    return render_template("signed_out.html", signed_out=True)

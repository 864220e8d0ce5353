"""The client's side, under `/i/`: the invite link's page, accepting, and the
limited Client Account (see its bank connections, add one, restore one).

Opening a link (GET — phones' link previews do it too) changes nothing but the
first-opened time; only the POST of Accept consumes it. The link's page says who
is asking (the firm, its logo and colour, the staff member who sent it, how to
check with the firm), what LedgerSync is and what the account can and cannot do,
and offers "This isn't me", which withdraws the link and tells the firm. Every form
carries a CSRF token and must come from our own pages; every page sends
`Referrer-Policy: no-referrer` (`pages.py`). Signing in starts a server-side
session (`core.invitations.sessions`) that sign-out, a revoked or replaced link, or time ends;
a client comes back later with a one-time code (`sign_in.py`). A page view never clears
the browser's session (a form open in another tab keeps working); only signing in and
out replace it.

A bank connected (or restored) ends on "You're done": what the firm can now see (each
bank and its accounts, "Chase Checking ••1234, Savings ••9876"), what happens next, and
*Add another bank* as a second thing to do. The provider's words on the bank's login
page are catalogue messages (`banks.LinkResult`), shown in the client's language.
"""

from __future__ import annotations

from functools import wraps

from flask import (
    Blueprint,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _

from core.banking import bank_data, bank_sync, banks, connections
from core.invitations import clients, links, sessions
from core.messaging.quiet_hours import zone_for
from core.platform import i18n, tokens
from core.platform.errors import LedgerSyncError, NotFound
from core.records import BankConnection, Client

from . import locale, pages

bp = Blueprint("client", __name__, url_prefix="/i")
pages.install(bp)
LINK_MISSES = {"name": "link-misses", "limit": 20, "window": 600}


def _state(token: str):
    throttle = pages.throttle(**LINK_MISSES)
    pages.refuse_if_throttled(throttle)
    state = links.check(token)
    if state.state == "unknown":
        throttle.miss(pages.address())
    elif state.invite is not None:
        locale.use(i18n.of_client(state.invite.client))
        pages.brand(state.invite.firm)
    return state


def _dead(state, status: int = 404):
    """Why the link doesn't work, and what to do: ask for a new link, sign in — except
    after "This isn't me", which offers nothing (the firm checks the address first)."""
    invite = state.invite
    expired_on = None
    if invite is not None and state.state == "expired":
        expired_on = _when(invite.expires_at, invite.client)
    # A dead link's page is the same whichever way it was reached (opened, or a form on
    # it sent): its language switch goes back to the link itself.
    token = (request.view_args or {}).get("token")
    return render_template("dead.html", state=state, expired_on=expired_on,
                           disowned=state.disowned,
                           lang_path=url_for("client.link", token=token) if token else None
                           ), status


# --- the link ---------------------------------------------------------------------


@bp.get("/<token>")
def link(token):
    state = _state(token)
    if state.state == "accepted" and _signed_in_as(state.invite.client_id):
        return redirect(url_for("client.account"))
    if not state.usable:
        return _dead(state)
    links.opened(token, state)
    invite = state.invite
    return render_template(
        "link.html", token=token, invite=invite, firm=invite.firm.name,
        first_name=invite.client.first_name, inviter=_inviter(invite),
        contact=pages.contact(invite.firm), expires=_when(invite.expires_at, invite.client),
    )


def _when(at, client) -> str:
    """'Sun 6 Dec, 9:30 PM PST': the day, time and zone, in the client's zone and the
    page's language."""
    return i18n.date_time_zone(at, zone_for(client), locale.current())


def _inviter(invite) -> str | None:
    """The staff member who sent the link, by name ("Ann Lee"), if we know it."""
    staff = invite.sent_by
    return staff.name if staff is not None and staff.name else None


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
    if state.invite is None or state.disowned:
        return _dead(state)  # an unknown link's answer: guessing teaches nothing
    links.request_new_link(token)
    return render_template("asked.html", firm=state.firm_name)


@bp.get("/<token>/not-me")
def not_me(token):
    """"This isn't me": asks first (a GET changes nothing: link previews make them)."""
    state = _state(token)
    if not state.usable:
        return _dead(state)
    return render_template("not_me.html", token=token, firm=state.firm_name)


@bp.post("/<token>/not-me")
def disown(token):
    state = _state(token)
    if state.usable:
        links.disown(token)
    elif not state.disowned:  # a second click answers the same
        return _dead(state)
    return render_template("not_me.html", done=True, firm=state.firm_name)


# --- the account --------------------------------------------------------------------


def _sign_in(invite) -> None:
    start(sessions.start(invite.client_id, invite.id), invite.purpose, list(invite.banks or []))


def start(session_id: str, purpose: str = "connect", chosen_banks: list | None = None) -> None:
    """The browser is signed in with this session from now on (anyone's before ends). A
    language chosen on the way in (the link's page, signing in) is the client's from now
    on."""
    sessions.end(session.get("sid"), "signed in again")
    kept = locale.kept_at_sign_in()
    session.clear()
    session.permanent = True
    session.update(sid=session_id, purpose=purpose, banks=chosen_banks or [], **kept)
    live = sessions.current(session_id)
    if live is not None and locale.chosen():
        _keep_language(live.client, locale.chosen())


def _keep_language(client: Client, lang: str) -> None:
    """The client's account keeps the language they chose (an event, as the firm's
    `clients language` records it)."""
    if i18n.of_client(client) != lang:
        clients.update(client, language=lang, actor="client")


def signed_in() -> bool:
    return sessions.current(session.get("sid")) is not None


def _signed_in_as(client_id: int) -> bool:
    live = sessions.current(session.get("sid"))
    return live is not None and live.client_id == client_id


def client_account(view):
    """The page needs a signed-in client with an account; `g.client` is theirs."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        live = sessions.current(session.get("sid"))
        if live is None or live.account_id is None:
            # the session stays: a form open in another tab still works
            return render_template("signed_out.html"), 403
        g.client = live.client
        locale.use(i18n.of_client(g.client))
        pages.brand(g.client.firm)
        return view(*args, **kwargs)

    return wrapper


@bp.get("/account")
@client_account
def account():
    rows = connections.for_client(g.client)
    return render_template("account.html", client=g.client, firm=g.client.firm.name,
                           connections=rows, purpose=session.get("purpose", "connect"),
                           broken=[c for c in rows if c.status == "needs_reconnect"],
                           working=[c for c in rows if c.status == "active"])


@bp.get("/account/done")
@client_account
def done():
    """The end of connecting: what the firm can now see, and what happens next. With
    a connection still to restore, the account's page says what is left instead."""
    rows = connections.for_client(g.client)
    working = [c for c in rows if c.status == "active"]
    if not working or any(c.status == "needs_reconnect" for c in rows):
        return redirect(url_for("client.account"))
    return render_template("done.html", firm=g.client.firm.name,
                           shared=[(c.institution_name, _accounts(c)) for c in working])


def _accounts(connection: BankConnection) -> list[str]:
    """'Checking ••1234' for each account of the connection: as kept, or, before its
    first sync has kept them, as the provider gives them now (then kept)."""
    rows = bank_data.accounts_of_connection(connection)
    if not rows and connection.access_sealed:
        access = tokens.unseal(connection.access_sealed)
        try:
            found = banks.provider().accounts(access) if access else []
        except banks.ProviderError:
            found = []
        bank_sync.keep_accounts(connection, found)
        rows = bank_data.accounts_of_connection(connection)
    return [f"{a.name}\u00a0••{a.mask}" if a.mask else a.name for a in rows]  # kept together


@bp.get("/account/add")
@client_account
def add():
    if banks.is_hosted():  # the provider's own pages (web/bank_links.py)
        return redirect(url_for("bank_links.add"))
    query = request.args.get("q", "")[:100]
    chosen = [banks.by_name(name) for name in session.get("banks") or g.client.banks or []]
    chosen = [i for i in chosen if banks.institution(i.id)]
    return render_template("add.html", firm=g.client.firm.name, chosen=chosen, query=query,
                           results=banks.search(query) if query else [])


@bp.route("/account/add/<institution_id>", methods=["GET", "POST"])
@client_account
def add_bank(institution_id):
    if banks.is_hosted():
        return redirect(url_for("bank_links.add"))
    institution = banks.institution(institution_id) or abort(404)
    if request.method == "GET":
        return _credentials_page(institution, "add")
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
        flash(_("%(bank)s is working; nothing to restore.", bank=connection.institution_name))
        return redirect(url_for("client.account"))
    if banks.is_hosted():
        return redirect(url_for("bank_links.restore", connection_id=connection.id))
    institution = banks.Institution(connection.institution_id, connection.institution_name)
    if request.method == "GET":
        return _credentials_page(institution, "restore", connection)
    outcome = connections.restore(g.client, connection.id, **_credentials())
    return _after(outcome, institution, "restore", connection)


def _credentials() -> dict:
    form = request.form
    if form.get("challenge"):
        return {"challenge": form["challenge"][:200], "code": form.get("code", "")[:20]}
    return {"username": form.get("username", "")[:200], "password": form.get("password", "")[:200]}


def _credentials_page(institution, action, connection=None, outcome=None, status=200,
                      said=""):
    """The bank's login (or its code), under the firm's header, with what the provider
    `said` of the last try; the sandbox's hint only when the provider gives one."""
    return render_template(
        "credentials.html", institution=institution, action=action, connection=connection,
        outcome=outcome, said=said, firm=g.client.firm.name,
        hint=banks.provider().sandbox_hint(),
    ), status


def _after(outcome, institution, action, connection=None):
    if outcome.status == "connected":
        flash(_("%(bank)s is connected.", bank=institution.name) if action == "add" else
              _("%(bank)s is working again.", bank=institution.name))
        return redirect(url_for("client.done"))
    status = 200 if outcome.status == "needs_code" else 422
    said = _provider_words(outcome.message, institution.name)
    return _credentials_page(institution, action, connection, outcome, status, said)


def _provider_words(message: str, bank: str) -> str:
    """A provider's message in the page's language: a catalogue message with `%(bank)s`
    (`banks.LinkResult`); words the catalogue doesn't have are shown as they came."""
    said = _(message) if message else ""
    try:
        return said % {"bank": bank}
    except (KeyError, ValueError, TypeError):
        return said


@bp.post("/account/sign-out")
def sign_out():
    sessions.end(session.get("sid"))
    kept = locale.kept_at_sign_out()
    session.clear()
    session.update(kept)
    return redirect(url_for("client.signed_out"))


@bp.get("/signed-out")
def signed_out():
    return render_template("signed_out.html", signed_out=True)


@bp.post("/account/language")
def language():
    """The *English* / *Español* switch: this browser's pages from now on and, signed
    in, the client's own language (their texts and emails too). Back to the page it
    was on."""
    lang = i18n.known(request.form.get("lang"))
    live = sessions.current(session.get("sid"))
    if lang:
        locale.choose(lang)
        if live is not None:
            _keep_language(live.client, lang)
    fallback = url_for("client.account") if live else url_for("sign_in.start")
    return redirect(locale.back_to(request.form.get("next")) or fallback)

"""The read API for connected applications, version 1, under `/api/v1/` (described
in OpenAPI at `/api/v1/openapi.json`, `api_spec.py`).

A connected application (the seed's Accounting CS case) exchanges a staff member's
LedgerSync email and password once for a token (`POST /api/v1/tokens`: the seed's
✅, or ❌ with the reason and the fix), then reads with `Authorization: Bearer lsk_…`:
the firm's clients, a client's accounts, an account's transactions, the firm's invite
funnel — read-only, within that staff member's firm and role (`core.firms.api_tokens`,
`core.banking.bank_data`, `core.reports.funnel`).
401: no token, or a revoked one; 403: the firm can't use LedgerSync now, or an admin's
action; 404: nothing of that id in this firm (another firm's looks exactly the same);
400: a bad cursor, limit, since, until or by (`error.parameter` names it; ASCII digits
only), or a
token exchange whose body is JSON but not an object; 429: over `API_RATE` requests a
minute for the token (20 token exchanges a minute for an address), with `Retry-After`.
Lists are keyset pages: `next_cursor` is null on the last one.
"""

from __future__ import annotations

import re
import threading
import time

from flask import Blueprint, current_app, g, jsonify, request
from redis import Redis, RedisError

from core.banking import bank_data
from core.firms import api_tokens
from core.invitations import clients as core_clients
from core.platform import clock
from core.platform.errors import InvalidInput, LedgerSyncError, NotFound, Refused
from core.records import ApiToken, BankAccount, BankConnection, BankTransaction, Client
from core.reports import funnel as core_funnel

from . import api_spec

bp = Blueprint("api", __name__, url_prefix="/api/v1")
EXCHANGES_PER_MINUTE = 20
STATUS = {api_tokens.Unauthorized: 401, Refused: 403, NotFound: 404, InvalidInput: 400}
EXCHANGE_STATUS = {"wrong_credentials": 401, "suspended": 403, "subscription_inactive": 403,
                   "too_many_tries": 429}
WHOLE_NUMBER = re.compile(r"[0-9]{1,6}")  # ASCII: str.isdigit() also takes '²'


# --- the rate limit: a fixed one-minute window, counted in Redis (every web process) ---


class Limiter:
    def __init__(self, redis_url: str):
        self.redis = Redis.from_url(redis_url, socket_connect_timeout=0.5, socket_timeout=0.5)
        self._local: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> tuple[int, int]:
        """This minute's count for `key`, with this hit; and seconds left in the minute."""
        minute = int(time.time() // 60)
        left = 60 - int(time.time() % 60)
        name = f"ledgersync:api-rate:{key}:{minute}"
        try:
            with self.redis.pipeline() as pipe:
                pipe.incr(name).expire(name, 120, nx=True)
                return int(pipe.execute()[0]), left
        except RedisError:
            with self._lock:
                at, count = self._local.get(key, (minute, 0))
                count = count + 1 if at == minute else 1
                self._local[key] = (minute, count)
                return count, left


def _limiter() -> Limiter:
    if "api-limiter" not in current_app.extensions:
        current_app.extensions["api-limiter"] = Limiter(current_app.config["LEDGERSYNC"].redis_url)
    return current_app.extensions["api-limiter"]


def _over(key: str, limit: int):
    count, left = _limiter().hit(key)
    g.rate = (limit, max(limit - count, 0))
    if count > limit:
        response = _error(429, "rate_limited", f"More than {limit} requests a minute; "
                                               f"try again in {left} s")
        response.headers["Retry-After"] = str(left)
        return response
    return None


@bp.after_request
def _headers(response):
    response.headers["Cache-Control"] = "no-store"
    if g.get("rate"):
        response.headers["X-RateLimit-Limit"], response.headers["X-RateLimit-Remaining"] = (
            str(n) for n in g.rate)
    return response


@bp.errorhandler(LedgerSyncError)
def _refused(problem: LedgerSyncError):
    status = next((code for kind, code in STATUS.items() if isinstance(problem, kind)), 400)
    response = _error(status, {401: "unauthorized", 403: "forbidden", 404: "not_found"}.get(
        status, "bad_request"), str(problem), problem.field)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="LedgerSync API"'
    return response


def _error(status: int, code: str, message: str, parameter: str | None = None):
    error = {"code": code, "message": message}
    if parameter:
        error["parameter"] = parameter
    response = jsonify(error=error)
    response.status_code = status
    return response


def authenticated(view):
    def wrapper(*args, **kwargs):
        header = request.headers.get("Authorization", "")
        scheme, _, raw = header.partition(" ")
        caller = api_tokens.authenticate(raw.strip() if scheme.lower() == "bearer" else None)
        limited = _over(f"token-{caller.token.id}", current_app.config["LEDGERSYNC"].api_rate)
        if limited is not None:
            return limited
        g.caller = caller
        return view(*args, **kwargs)

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return wrapper


# --- the token exchange -------------------------------------------------------------


@bp.post("/tokens")
def exchange():
    """A staff member's email and password, once, for an API token (shown once)."""
    limited = _over(f"exchange-{request.remote_addr or 'unknown'}", EXCHANGES_PER_MINUTE)
    if limited is not None:
        return limited
    given = _exchange_fields()
    result = api_tokens.exchange(str(given.get("email") or "")[:254],
                                 str(given.get("password") or "")[:200],
                                 str(given.get("label") or "")[:100])
    if not result.ok:
        response = jsonify(ok=False, result=f"❌ {result.reason}", reason=result.reason,
                           fix=result.fix, code=result.code)
        response.status_code = EXCHANGE_STATUS.get(result.code, 400)
        if result.code == "too_many_tries":
            response.headers["Retry-After"] = str(int(api_tokens.FAILURE_WINDOW.total_seconds()))
        return response
    staff = result.record.staff
    response = jsonify(
        ok=True, result=f"✅ Connected as {staff.email} at {staff.firm.name} ({staff.role})",
        token=result.token, token_id=result.record.id, warning=result.warning or None,
        staff={"email": staff.email, "name": staff.name, "role": staff.role},
        firm={"id": staff.firm.id, "name": staff.firm.name})
    response.status_code = 201
    return response


def _exchange_fields():
    """The exchange's form, or its JSON object; InvalidInput (400) for any other JSON."""
    if not request.is_json:
        return request.form
    try:
        given = request.get_json(silent=True)
    except RecursionError:  # nested deeper than the parser goes
        given = None
    if not isinstance(given, dict):
        raise InvalidInput('The body is not a JSON object: send {"email": …, "password": …}',
                           field="body")
    return given


@bp.get("/tokens")
@authenticated
def tokens():
    """The firm's API tokens (an admin), or the caller's own (staff)."""
    return jsonify(data=[_token(t) for t in api_tokens.visible_to(g.caller)])


@bp.delete("/tokens/<int:token_id>")
@authenticated
def revoke(token_id):
    caller = g.caller
    token = api_tokens.revoke(caller.firm, token_id, by=caller.staff,
                              actor=f"staff:{caller.staff.id}")
    return jsonify(_token(token))


# --- reading ------------------------------------------------------------------------


@bp.get("/clients")
@authenticated
def clients():
    page = bank_data.clients_page(g.caller.firm, _cursor(), _limit(100))
    return jsonify(data=_clients(page.rows), next_cursor=page.next_cursor)


@bp.get("/clients/<int:client_id>/accounts")
@authenticated
def accounts(client_id):
    client = core_clients.get(g.caller.firm, client_id)
    return jsonify(data=[_account(a) for a in bank_data.accounts(client)])


@bp.get("/accounts/<int:account_id>/transactions")
@authenticated
def transactions(account_id):
    account = bank_data.account(g.caller.firm, account_id)
    since = request.args.get("since")
    page = bank_data.transactions(
        account=account, cursor=_cursor(), limit=_limit(100),
        since=bank_data.since_date(since, clock.now().date()) if since else None)
    return jsonify(data=[_transaction(t) for t in page.rows], next_cursor=page.next_cursor)


@bp.get("/funnel")
@authenticated
def funnel():
    """The firm's invite funnel for a period (`since`: 30d or a date; `until`: a date),
    by nothing, `staff`, `channel` or `run`: stages, time to connect, where the others
    stand and why, and the first names of each stall (`core.reports.funnel`)."""
    firm = g.caller.firm
    when = core_funnel.period(request.args.get("since") or None,
                              request.args.get("until") or None,
                              tz=clock.zone(firm.timezone))
    return jsonify(_funnel(core_funnel.of(firm, when, request.args.get("by") or None)))


@bp.get("/openapi.json")
def openapi():
    return jsonify(api_spec.spec(current_app.config["LEDGERSYNC"].public_base_url))


def _cursor() -> str | None:
    return request.args.get("cursor") or None


def _limit(default: int) -> int:
    text = request.args.get("limit", "")
    if not text:
        return default
    if not WHOLE_NUMBER.fullmatch(text):
        raise InvalidInput(f"limit is a whole number from 1 to {bank_data.MAX_PAGE}",
                           field="limit")
    return int(text)


# --- what a row looks like --------------------------------------------------------------


def _clients(rows: list[Client]) -> list[dict]:
    by_client: dict[int, list] = {}
    if rows:
        for c in BankConnection.select().where(BankConnection.client.in_([r.id for r in rows])):
            by_client.setdefault(c.client_id, []).append(
                {"id": c.id, "institution": c.institution_name, "status": c.status})
    return [{"id": r.id, "name": r.name, "email": r.email, "phone": r.phone,
             "connections": by_client.get(r.id, [])} for r in rows]


def _account(account: BankAccount) -> dict:
    connection = account.connection
    return {"id": account.id, "name": account.name, "official_name": account.official_name,
            "mask": account.mask, "type": account.type, "subtype": account.subtype,
            "currency": account.currency,
            "balance": None if account.balance_cents is None else
            bank_data.decimal_text(account.balance_cents),
            "institution": connection.institution_name,
            "connection": {"id": connection.id, "status": connection.status,
                           "synced_at": _time(connection.synced_at)}}


def _transaction(txn: BankTransaction) -> dict:
    return {"id": txn.id, "account_id": txn.account_id, "date": txn.posted_on.isoformat(),
            "name": txn.name, "merchant_name": txn.merchant_name, "category": txn.category,
            "amount": bank_data.decimal_text(txn.amount_cents), "currency": txn.currency,
            "pending": txn.pending}


def _funnel(seen: core_funnel.Funnel) -> dict:
    return {"period": {"from": _time(seen.period.start), "to": _time(seen.period.end),
                       "label": seen.period.label},
            "by": seen.by, "counted": "clients", **_group(seen.total),
            "stalls": [{"reason": s.reason, "words": s.words, "count": s.count,
                        "details": [{"reason": text, "count": n} for text, n in s.details],
                        "clients": [{"id": n.id, "name": n.name} for n in s.names]}
                       for s in seen.stalls],
            "groups": [{"key": g.key, "label": g.label, **_group(g)} for g in seen.groups]
            if seen.by else []}


def _group(group: core_funnel.Group) -> dict:
    stages, timing = group.stages, group.timing
    return {"stages": {s: stages.count(s) for s in core_funnel.STAGES},
            "rates": {s: stages.rate(s) for s in core_funnel.STAGES},
            "time_to_connect": {"connected": timing.connected,
                                "median_seconds": timing.median, "p90_seconds": timing.p90},
            "in_progress": group.waiting}


def _token(token: ApiToken) -> dict:
    return {"id": token.id, "hint": token.hint + "…", "label": token.label,
            "staff": token.staff.email, "created_at": _time(token.created_at),
            "last_used_at": _time(token.last_used_at), "revoked_at": _time(token.revoked_at)}


def _time(value) -> str | None:
    return None if value is None else clock.as_utc(value).isoformat().replace("+00:00", "Z")

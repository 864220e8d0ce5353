"""A local stand-in for Plaid's API, speaking the JSON plaid-python sends and reads,
so tests go through the real SDK and HTTP (`PLAID_API_URL` points it here):

- `POST /link/token/create` → a link token and its `hosted_link_url` (update mode when
  the request carries an `access_token`);
- `POST /link/token/get` → the token's Link sessions, once the "client" finished them
  (`complete_link`, `exit_link`), as Plaid documents them: `results.item_add_results`
  (in update mode too) or `exit`, never the legacy `on_success`; with `lagging` set,
  Plaid is not showing the finished sessions yet;
- `POST /item/public_token/exchange` → an access token and item id (a public token
  works once: INVALID_PUBLIC_TOKEN after); `POST /item/get` → the item, with its
  institution;
- `POST /accounts/get`, `POST /transactions/sync` (cursor pages of `count`, from a log
  of changes a test writes: `add`, `modify`, `remove`) — ITEM_LOGIN_REQUIRED while the
  item is broken (`break_item`);
- `POST /webhook_verification_key/get` → the public half (a JWK) of the stand-in's
  ES256 key; `webhook()` signs a body with it as Plaid does (`Plaid-Verification`).

Webhook bodies as Plaid sends them: `break_item` and `repair_item` give ITEM ERROR
and LOGIN_REPAIRED — no event id, no time, so the same item's second break is the
same bytes as its first — and `session_finished` gives LINK SESSION_FINISHED.

Client id and secret must come in PLAID-CLIENT-ID / PLAID-SECRET (else
INVALID_API_KEYS). Every request is recorded (`requests`).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from werkzeug.wrappers import Request, Response

from tests.standin import LocalServer

CLIENT_ID = "plaid-client-id-for-tests"
SECRET = "plaid-secret-for-tests"
CHASE = ("ins_56", "Chase")


@dataclass
class Item:
    item_id: str
    access_token: str
    institution: tuple[str, str]
    accounts: list[dict]
    error: str | None = None
    changes: list[tuple[str, dict]] = field(default_factory=list)  # (added|modified|removed, …)


@dataclass
class LinkToken:
    token: str
    request: dict
    sessions: list[dict] = field(default_factory=list)

    @property
    def update_mode(self) -> bool:
        return bool(self.request.get("access_token"))


class PlaidStandIn(LocalServer):
    def __init__(self, client_id: str = CLIENT_ID, secret: str = SECRET):
        self.client_id, self.secret = client_id, secret
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.kid = str(uuid.uuid4())
        self.key_expired = False
        self.items: dict[str, Item] = {}
        self.link_tokens: dict[str, LinkToken] = {}
        self.public_tokens: dict[str, str | None] = {}  # public token → item id (None: used)
        self.requests: list[tuple[str, dict]] = []
        self.lagging = False  # /link/token/get doesn't show finished sessions yet
        self._sync_failures: list[tuple[str, str | None, int]] = []
        self._lock = threading.Lock()
        super().__init__()

    # --- what a test does: the client at Plaid, the bank, Plaid's webhooks ---------------

    def complete_link(self, link_token: str, institution: tuple[str, str] = CHASE,
                      accounts: list[dict] | None = None) -> Item | None:
        """The client finished Hosted Link: a new item (or, in update mode, the item's
        login repaired)."""
        with self._lock:
            link = self.link_tokens[link_token]
            if link.update_mode:
                item = self._item_by_access(link.request["access_token"])
                item.error = None
            else:
                item = self._new_item(institution, accounts)
            link.sessions.append(_session(results=[self._add_result(item)]))
            return item

    def exit_link(self, link_token: str) -> None:
        with self._lock:
            self.link_tokens[link_token].sessions.append(_session(exit=True))

    def session_finished(self, link_token: str) -> dict:
        """LINK SESSION_FINISHED for the token's last session, as Plaid sends it."""
        with self._lock:
            session = self.link_tokens[link_token].sessions[-1]
        added = (session.get("results") or {}).get("item_add_results") or []
        return {"webhook_type": "LINK", "webhook_code": "SESSION_FINISHED",
                "status": "SUCCESS" if added else "EXITED",
                "link_session_id": session["link_session_id"], "link_token": link_token,
                "public_tokens": [r["public_token"] for r in added], "environment": "sandbox"}

    def break_item(self, item_id: str, code: str = "ITEM_LOGIN_REQUIRED") -> dict:
        """The bank wants the login again; the ITEM ERROR webhook Plaid sends for it."""
        with self._lock:
            self.items[item_id].error = code
        return {"webhook_type": "ITEM", "webhook_code": "ERROR", "item_id": item_id,
                "error": {"error_type": "ITEM_ERROR", "error_code": code,
                          "error_message": "the login details of this item have changed "
                                           "(credentials, MFA, or required user action) and "
                                           "a user login is required to update this "
                                           "information",
                          "display_message": None, "status": 400},
                "environment": "sandbox"}

    def repair_item(self, item_id: str) -> dict:
        """The login works again (fixed outside our app): ITEM LOGIN_REPAIRED."""
        with self._lock:
            self.items[item_id].error = None
        return {"webhook_type": "ITEM", "webhook_code": "LOGIN_REPAIRED", "item_id": item_id,
                "environment": "sandbox"}

    def add(self, item_id: str, *txns: dict) -> None:
        with self._lock:
            self.items[item_id].changes += [("added", t) for t in txns]

    def modify(self, item_id: str, txn: dict) -> None:
        with self._lock:
            self.items[item_id].changes.append(("modified", txn))

    def remove(self, item_id: str, transaction_id: str) -> None:
        with self._lock:
            item = self.items[item_id]
            account = next(t for op, t in item.changes if t["transaction_id"] == transaction_id)
            item.changes.append(("removed", {"transaction_id": transaction_id,
                                             "account_id": account["account_id"]}))

    def fail_next_sync(self, code: str = "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION", *,
                       at_cursor: str | None = None, status: int = 400) -> None:
        """The next /transactions/sync (from `at_cursor`, when given) answers this error."""
        with self._lock:
            self._sync_failures.append((code, at_cursor, status))

    def webhook(self, body: dict, *, iat: float | None = None, key=None, kid: str | None = None,
                algorithm: str = "ES256") -> tuple[bytes, dict[str, str]]:
        """The body and headers of a webhook as Plaid would send it (signed now)."""
        raw = json.dumps(body, indent=2).encode()
        claims = {"iat": int(time.time() if iat is None else iat),
                  "request_body_sha256": hashlib.sha256(raw).hexdigest()}
        token = jwt.encode(claims, key or self.key, algorithm=algorithm,
                           headers={"kid": kid or self.kid})
        return raw, {"Plaid-Verification": token, "Content-Type": "application/json"}

    def calls(self, path: str) -> list[dict]:
        with self._lock:
            return [body for p, body in self.requests if p == path]

    # --- the HTTP side ------------------------------------------------------------------

    def _app(self, environ, start_response):
        request = Request(environ)
        try:
            body = json.loads(request.get_data() or b"{}")
        except ValueError:
            body = {}
        with self._lock:
            self.requests.append((request.path, body))
        status, payload = self._answer(request, body)
        response = Response(json.dumps(payload), status=status, content_type="application/json")
        return response(environ, start_response)

    def _answer(self, request: Request, body: dict) -> tuple[int, dict]:
        if (request.headers.get("PLAID-CLIENT-ID") != self.client_id
                or request.headers.get("PLAID-SECRET") != self.secret):
            return _error("INVALID_INPUT", "INVALID_API_KEYS", "invalid client_id or secret")
        handler = ROUTES.get(request.path)
        if handler is None:
            return 404, {"error_code": "NOT_FOUND", "error_type": "INVALID_REQUEST"}
        with self._lock:
            return handler(self, body)

    def _link_token_create(self, body: dict) -> tuple[int, dict]:
        if body.get("access_token") and self._item_by_access(body["access_token"]) is None:
            return _error("INVALID_INPUT", "INVALID_ACCESS_TOKEN", "bad access token")
        token = f"link-sandbox-{uuid.uuid4()}"
        self.link_tokens[token] = LinkToken(token, body)
        return 200, {"link_token": token, "expiration": _stamp(timedelta(hours=4)),
                     "request_id": _rid(),
                     "hosted_link_url": f"{self.url}/hosted/{token.removeprefix('link-')}"}

    def _link_token_get(self, body: dict) -> tuple[int, dict]:
        link = self.link_tokens.get(body.get("link_token", ""))
        if link is None:
            return _error("INVALID_INPUT", "INVALID_LINK_TOKEN", "unknown link token")
        request = link.request
        return 200, {
            "link_token": link.token, "created_at": _stamp(), "expiration":
            _stamp(timedelta(hours=4)), "request_id": _rid(),
            "link_sessions": [] if self.lagging else link.sessions,
            "metadata": {"initial_products": request.get("products", []),
                         "webhook": request.get("webhook"), "country_codes": ["US"],
                         "language": request.get("language"), "redirect_uri": None,
                         "client_name": request.get("client_name")}}

    def _exchange(self, body: dict) -> tuple[int, dict]:
        item_id = self.public_tokens.get(body.get("public_token", ""))
        if item_id is None:
            return _error("INVALID_INPUT", "INVALID_PUBLIC_TOKEN", "used or unknown")
        self.public_tokens[body["public_token"]] = None
        item = self.items[item_id]
        return 200, {"access_token": item.access_token, "item_id": item.item_id,
                     "request_id": _rid()}

    def _item_get(self, body: dict) -> tuple[int, dict]:
        item = self._item_by_access(body.get("access_token", ""))
        if item is None:
            return _error("INVALID_INPUT", "INVALID_ACCESS_TOKEN", "bad access token")
        return 200, {"item": _item_json(item), "status": None, "request_id": _rid()}

    def _accounts_get(self, body: dict) -> tuple[int, dict]:
        item = self._item_by_access(body.get("access_token", ""))
        if item is None:
            return _error("INVALID_INPUT", "INVALID_ACCESS_TOKEN", "bad access token")
        if item.error:
            return _error("ITEM_ERROR", item.error, "the login details of this item have "
                          "changed", display="Log in to your bank again.")
        return 200, {"accounts": item.accounts, "item": _item_json(item), "request_id": _rid()}

    def _sync(self, body: dict) -> tuple[int, dict]:
        item = self._item_by_access(body.get("access_token", ""))
        if item is None:
            return _error("INVALID_INPUT", "INVALID_ACCESS_TOKEN", "bad access token")
        if item.error:
            return _error("ITEM_ERROR", item.error, "login required")
        failure = next((f for f in self._sync_failures if f[1] in (None, body.get("cursor"))),
                       None)
        if failure:
            self._sync_failures.remove(failure)
            kind = "API_ERROR" if failure[2] >= 500 else "TRANSACTIONS_ERROR"
            return failure[2], _error(kind, failure[0], "the sync failed")[1]
        start = int((body.get("cursor") or "c0").removeprefix("c"))
        chunk = item.changes[start:start + int(body.get("count") or 100)]
        end = start + len(chunk)
        return 200, {
            "added": [t for op, t in chunk if op == "added"],
            "modified": [t for op, t in chunk if op == "modified"],
            "removed": [t for op, t in chunk if op == "removed"],
            "accounts": item.accounts, "next_cursor": f"c{end}",
            "has_more": end < len(item.changes),
            "transactions_update_status": "HISTORICAL_UPDATE_COMPLETE", "request_id": _rid()}

    def _verification_key(self, body: dict) -> tuple[int, dict]:
        if body.get("key_id") != self.kid:
            return _error("INVALID_INPUT", "INVALID_WEBHOOK_VERIFICATION_KEY_ID", "no such key")
        jwk = ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return 200, {"key": {**jwk, "alg": "ES256", "kid": self.kid, "use": "sig",
                             "created_at": 1_700_000_000,
                             "expired_at": 1_800_000_000 if self.key_expired else None},
                     "request_id": _rid()}

    # --- the bank's side ---------------------------------------------------------------

    def _new_item(self, institution, accounts) -> Item:
        item_id = secrets.token_urlsafe(24)
        item = Item(item_id, f"access-sandbox-{uuid.uuid4()}", institution,
                    accounts or [account("chk", "Plaid Checking", "0000", "checking", 110),
                                 account("sav", "Plaid Saving", "1111", "savings", 210)])
        self.items[item_id] = item
        return item

    def _add_result(self, item: Item) -> dict:
        """A session's `results.item_add_results[]` entry: a public token for the item,
        its institution and accounts."""
        return {"public_token": self._public_token(item.item_id),
                "institution": {"institution_id": item.institution[0],
                                "name": item.institution[1]},
                "accounts": [{"id": a["account_id"], "name": a["name"], "mask": a["mask"],
                              "type": a["type"], "subtype": a["subtype"]}
                             for a in item.accounts]}

    def _public_token(self, item_id: str) -> str:
        token = f"public-sandbox-{uuid.uuid4()}"
        self.public_tokens[token] = item_id
        return token

    def _item_by_access(self, access_token: str) -> Item | None:
        return next((i for i in self.items.values() if i.access_token == access_token), None)


ROUTES = {
    "/link/token/create": PlaidStandIn._link_token_create,
    "/link/token/get": PlaidStandIn._link_token_get,
    "/item/public_token/exchange": PlaidStandIn._exchange,
    "/item/get": PlaidStandIn._item_get,
    "/accounts/get": PlaidStandIn._accounts_get,
    "/transactions/sync": PlaidStandIn._sync,
    "/webhook_verification_key/get": PlaidStandIn._verification_key,
}


def account(suffix: str, name: str, mask: str, subtype: str, balance: float) -> dict:
    return {"account_id": f"acc-{suffix}-{secrets.token_hex(4)}", "name": name, "mask": mask,
            "official_name": f"{name} Account", "type": "depository", "subtype": subtype,
            "balances": {"available": balance, "current": balance, "limit": None,
                         "iso_currency_code": "USD", "unofficial_currency_code": None}}


def txn(account_id: str, transaction_id: str, day: str, name: str, amount: float,
        pending: bool = False, merchant: str | None = None) -> dict:
    """A transaction as /transactions/sync gives it (amount: positive is money out)."""
    return {
        "account_id": account_id, "transaction_id": transaction_id, "amount": amount,
        "iso_currency_code": "USD", "unofficial_currency_code": None, "date": day,
        "authorized_date": day, "authorized_datetime": None, "datetime": None, "name": name,
        "merchant_name": merchant, "merchant_entity_id": None, "logo_url": None,
        "website": None, "pending": pending, "pending_transaction_id": None,
        "account_owner": None, "payment_channel": "in store", "transaction_type": "place",
        "transaction_code": None, "category": None, "category_id": None, "check_number": None,
        "counterparties": [],
        "personal_finance_category": {"primary": "FOOD_AND_DRINK",
                                      "detailed": "FOOD_AND_DRINK_COFFEE",
                                      "confidence_level": "VERY_HIGH"},
        "location": {"address": None, "city": None, "region": None, "postal_code": None,
                     "country": None, "lat": None, "lon": None, "store_number": None},
        "payment_meta": {"by_order_of": None, "payee": None, "payer": None,
                         "payment_method": None, "payment_processor": None, "ppd_id": None,
                         "reason": None, "reference_number": None},
    }


def _session(*, results: list | None = None, exit: bool = False) -> dict:
    session = {"link_session_id": str(uuid.uuid4()), "started_at": _stamp(),
               "finished_at": _stamp()}
    if results is not None:
        session["results"] = {"item_add_results": results, "cra_item_add_results": [],
                              "cra_update_results": [], "bank_income_results": [],
                              "payroll_income_results": [], "document_income_results": None}
    if exit:
        session["exit"] = {"error": None, "metadata": {"status": "requires_credentials"}}
    return session


def _item_json(item: Item) -> dict:
    return {"item_id": item.item_id, "webhook": None, "error": None, "available_products": [],
            "billed_products": ["transactions"], "consent_expiration_time": None,
            "update_type": "background", "institution_id": item.institution[0],
            "institution_name": item.institution[1]}


def _error(kind: str, code: str, message: str, display: str | None = None) -> tuple[int, dict]:
    return 400, {"error_type": kind, "error_code": code, "error_message": message,
                 "display_message": display, "request_id": _rid(), "suggested_action": None}


def _stamp(later: timedelta = timedelta()) -> str:
    return (datetime.now(UTC) + later).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rid() -> str:
    return secrets.token_hex(8)

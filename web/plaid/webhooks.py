"""`POST /banks/plaid/webhook`: Plaid's webhooks, verified (`verify.py`; unverified:
401 and nothing changed), put in core's words and handled once (`core.bank_webhooks`,
by the SHA-256 of the body). Known and unknown kinds alike answer 200 quickly, so
Plaid retries only what failed (a 500 forgets the claim, so the retry is handled).

| Plaid says                                           | core does                       |
|------------------------------------------------------|---------------------------------|
| ITEM ERROR with ITEM_LOGIN_REQUIRED                  | needs restoring (notice, invite)|
| ITEM PENDING_EXPIRATION, PENDING_DISCONNECT          | needs restoring, with the date  |
| ITEM LOGIN_REPAIRED                                  | working again; prompts stop     |
| ITEM USER_PERMISSION_REVOKED                         | disconnected                    |
| TRANSACTIONS SYNC_UPDATES_AVAILABLE                  | a sync of the item              |
| LINK SESSION_FINISHED, ITEM_ADD_RESULT               | the hosted link session finishes|
"""

from __future__ import annotations

import hashlib
import json
import logging

from flask import Blueprint, Response, abort, jsonify, request

from core import bank_webhooks, banks
from core.bank_webhooks import BankEvent

from .provider import PlaidProvider
from .verify import Unverified

log = logging.getLogger(__name__)
bp = Blueprint("plaid_webhooks", __name__)


@bp.post("/banks/plaid/webhook")
def webhook():
    provider = banks.provider()
    if not isinstance(provider, PlaidProvider):
        abort(404)
    body = request.get_data(cache=True)
    try:
        provider.verifier.verify(body, request.headers.get("Plaid-Verification"))
    except Unverified as problem:
        log.warning("Plaid webhook refused: %s", problem)
        return Response("unverified\n", 401, mimetype="text/plain")
    try:
        payload = json.loads(body)
    except ValueError:
        return Response("not JSON\n", 400, mimetype="text/plain")
    event = translate(payload if isinstance(payload, dict) else {})
    done = bank_webhooks.receive("plaid", hashlib.sha256(body).hexdigest(), event)
    log.info("Plaid webhook %s %s: %s", payload.get("webhook_type"),
             payload.get("webhook_code"), done)
    return jsonify(ok=True)


def translate(payload: dict) -> BankEvent:
    kind = (str(payload.get("webhook_type", "")), str(payload.get("webhook_code", "")))
    item = payload.get("item_id") if isinstance(payload.get("item_id"), str) else None
    code = ":".join(kind)
    if kind == ("ITEM", "ERROR"):
        return _item_error(payload, item)
    if kind[0] == "ITEM" and kind[1] in ITEM_EVENTS:
        what, reason = ITEM_EVENTS[kind[1]]
        return BankEvent(what, item, reason.format(**_details(payload)), code=code)
    if kind == ("TRANSACTIONS", "SYNC_UPDATES_AVAILABLE"):
        return BankEvent("updates", item, code=code)
    if kind[0] == "LINK" and kind[1] in {"SESSION_FINISHED", "ITEM_ADD_RESULT"}:
        token = payload.get("link_token")
        return BankEvent("link_finished", link_token=token if isinstance(token, str) else None,
                         code=code)
    return BankEvent("ignored", item, code=code)


ITEM_EVENTS = {  # code: (core's kind, the reason the firm reads)
    "PENDING_EXPIRATION": ("expiring", "the bank's consent ends {consent}; the client must "
                                       "log in again before then"),
    "PENDING_DISCONNECT": ("expiring", "the bank will disconnect it soon ({reason}); the "
                                       "client must log in again"),
    "LOGIN_REPAIRED": ("repaired", ""),
    "USER_PERMISSION_REVOKED": ("revoked", "the client withdrew LedgerSync's access at "
                                           "their bank or at Plaid"),
}


def _item_error(payload: dict, item: str | None) -> BankEvent:
    error = payload.get("error") if isinstance(payload.get("error"), dict) else {}
    code = str(error.get("error_code", ""))
    if code == banks.LOGIN_REQUIRED:
        return BankEvent("login_required", item, "the bank asked the client to log in again",
                         code=f"ITEM:ERROR:{code}")
    return BankEvent("ignored", item, code=f"ITEM:ERROR:{code}")


def _details(payload: dict) -> dict:
    consent = str(payload.get("consent_expiration_time") or "soon")[:10]
    reason = str(payload.get("reason") or "the bank's own change").replace("_", " ").lower()
    return {"consent": consent, "reason": reason[:80]}

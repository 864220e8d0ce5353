"""`POST /banks/plaid/webhook`: Plaid's webhooks, verified (`verify.py`; unverified:
401 and nothing changed), put in core's words and applied every time they come
(`core.banking.provider_events`). Plaid's ITEM webhooks carry no event id and no time, so a
second break (or repair) of an item is the same bytes as the first: nothing is
dropped for having been seen; each effect changes a connection only from the state
it changes (a retry changes nothing). Known and unknown kinds alike answer 200
quickly, so Plaid retries only what failed (a 500).

| Plaid says                                     | core does                             |
|------------------------------------------------|---------------------------------------|
| ITEM ERROR with ITEM_LOGIN_REQUIRED            | needs restoring (notice; invite once a|
|                                                | break), unless it already does        |
| ITEM PENDING_EXPIRATION, PENDING_DISCONNECT    | needs restoring, with the date        |
| ITEM LOGIN_REPAIRED                            | working again, unless it already is;  |
|                                                | prompts stop                          |
| ITEM USER_PERMISSION_REVOKED                   | disconnected                          |
| TRANSACTIONS SYNC_UPDATES_AVAILABLE            | a sync of the item                    |
| LINK SESSION_FINISHED                          | the link session finishes: `status`   |
|                                                | success (its `public_tokens` added,   |
|                                                | or, for a restore, working again) or  |
|                                                | exited; without tokens for a new      |
|                                                | login, as /link/token/get says        |
| LINK ITEM_ADD_RESULT                           | the session finishes as               |
|                                                | /link/token/get says                  |
"""

from __future__ import annotations

import hashlib
import json
import logging

from flask import Blueprint, Response, abort, jsonify, request

from core.banking import banks, provider_events
from core.banking.provider_events import BankEvent
from ops import metrics
from plaid_adapter.provider import PlaidProvider
from plaid_adapter.verify import Unverified

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
        metrics.verification_failed("plaid")
        return Response("unverified\n", 401, mimetype="text/plain")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # (nesting deeper than Python's stack: not Plaid)
        return Response("not JSON\n", 400, mimetype="text/plain")
    if not isinstance(payload, dict):
        return Response("not a JSON object\n", 400, mimetype="text/plain")
    event = translate(payload)
    done = provider_events.receive("plaid", hashlib.sha256(body).hexdigest(), event)
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
        outcome = _session_outcome(payload) if kind[1] == "SESSION_FINISHED" else None
        return BankEvent("link_finished", link_token=token if isinstance(token, str) else None,
                         code=code, outcome=outcome)
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


def _session_outcome(payload: dict) -> banks.LinkOutcome | None:
    """SESSION_FINISHED's `status` ("success" or "exited"; Plaid's examples write it in
    capitals) and `public_tokens` (the deprecated `public_token` when that is all)."""
    status = str(payload.get("status", "")).lower()
    if status == "exited":
        return banks.LinkOutcome("exited")
    if status != "success":
        return None
    tokens = payload.get("public_tokens")
    if not isinstance(tokens, list):
        tokens = [payload.get("public_token")]
    added = tuple(banks.AddedItem(t) for t in tokens if isinstance(t, str) and t)
    return banks.LinkOutcome("success", added)

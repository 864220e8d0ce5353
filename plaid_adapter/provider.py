"""Plaid behind core's bank-provider port, through Plaid's own SDK (plaid-python).

Link mode: **Hosted Link**. The client's phone goes to Plaid's own page
(`hosted_link_url`), in the client's language (`language`), and comes back to ours
(`completion_redirect_uri`); Plaid also says the session finished by webhook (LINK
SESSION_FINISHED, with its `status` and `public_tokens`), so a client who closes the
tab on Plaid's last page is connected all the same. Our pages keep their strict
Content-Security-Policy (no script at all) and load nothing from Plaid; Plaid handles
the banks' OAuth redirects itself. Restoring is the same flow in update mode (the
item's access token in the link token request).

A session's outcome is read as `/link/token/get` documents it: a session's
`results.item_add_results` (public tokens, with their institution and accounts), or
its `exit`; the legacy `on_success` (deprecated by Plaid in favour of `results`) is
not read.

`PLAID_CLIENT_ID`, `PLAID_SECRET`, `PLAID_ENV` (sandbox or production) and
`PLAID_API_URL` (another host: a local stand-in) configure it; the webhook address is
`PUBLIC_BASE_URL/banks/plaid/webhook`. Access tokens come back to core, which seals
them; nothing here logs one (and `core/platform/logs.py` masks any that would be).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime
from decimal import Decimal

import plaid
from plaid.api import plaid_api
from plaid.model.accounts_get_request import AccountsGetRequest
from plaid.model.country_code import CountryCode
from plaid.model.item_get_request import ItemGetRequest
from plaid.model.item_public_token_exchange_request import ItemPublicTokenExchangeRequest
from plaid.model.link_token_create_hosted_link import LinkTokenCreateHostedLink
from plaid.model.link_token_create_request import LinkTokenCreateRequest
from plaid.model.link_token_create_request_user import LinkTokenCreateRequestUser
from plaid.model.link_token_get_request import LinkTokenGetRequest
from plaid.model.products import Products
from plaid.model.transactions_sync_request import TransactionsSyncRequest
from plaid.model.webhook_verification_key_get_request import WebhookVerificationKeyGetRequest

from core.banking import banks
from core.platform.config import Settings, settings
from core.platform.errors import ConfigError, Refused
from plaid_adapter.verify import Verifier

log = logging.getLogger(__name__)
HOSTS = {"sandbox": plaid.Environment.Sandbox, "production": plaid.Environment.Production}
TIMEOUT = 20  # seconds, for each request to Plaid
LINK_LIFETIME = 3600  # seconds the hosted page works once made
SYNC_COUNT = 500  # transactions a /transactions/sync page holds (Plaid's most)
CLIENT_NAME_MAX = 30  # Plaid's limit on the name shown in Link
TRANSIENT_TYPES = {"API_ERROR", "RATE_LIMIT_EXCEEDED", "INSTITUTION_ERROR"}


class PlaidProvider:
    name = "plaid"
    flow = "hosted"

    def __init__(self):
        self._api: plaid_api.PlaidApi | None = None
        self._built_for: tuple[str, str, str] | None = None
        self.verifier = Verifier(self.verification_key)

    def api(self) -> plaid_api.PlaidApi:
        """One SDK client per provider, rebuilt only when the settings change."""
        config = settings()
        wanted = (config.plaid_client_id, config.plaid_secret, _host(config))
        if self._api is None or wanted != self._built_for:
            if not (config.plaid_client_id and config.plaid_secret):
                raise ConfigError("Plaid needs PLAID_CLIENT_ID and PLAID_SECRET")
            configuration = plaid.Configuration(host=wanted[2], api_key={
                "clientId": wanted[0], "secret": wanted[1]})
            self._api, self._built_for = plaid_api.PlaidApi(plaid.ApiClient(configuration)), wanted
        return self._api

    def sandbox_hint(self) -> str | None:
        return None

    # --- our own login form: not Plaid's way --------------------------------------------

    def link(self, institution, username, password) -> banks.LinkResult:
        raise Refused("Banks connect through Plaid's own pages")

    def submit_code(self, institution, challenge, code) -> banks.LinkResult:
        raise Refused("Banks connect through Plaid's own pages")

    # --- Hosted Link --------------------------------------------------------------------

    def start_link(self, request: banks.LinkRequest) -> banks.HostedLink:
        fields = {
            "user": LinkTokenCreateRequestUser(client_user_id=request.client_user_id),
            "client_name": request.firm_name[:CLIENT_NAME_MAX], "language": request.language,
            "country_codes": [CountryCode("US")], "webhook": request.webhook_url,
            "hosted_link": LinkTokenCreateHostedLink(
                completion_redirect_uri=request.completion_url,
                url_lifetime_seconds=LINK_LIFETIME),
        }
        if request.access_token:
            fields["access_token"] = request.access_token  # update mode: the same item
        else:
            fields["products"] = [Products("transactions")]
        made = self._call("link_token_create", LinkTokenCreateRequest(**fields))
        return banks.HostedLink(made["hosted_link_url"], made["link_token"],
                                _aware(made.get("expiration")))

    def link_outcome(self, link_token: str) -> banks.LinkOutcome:
        """What the token's Link sessions came to: an item added (in update mode too: the
        repaired item's), else the client left, else not ended yet as far as Plaid
        shows (the SESSION_FINISHED webhook may say so first)."""
        found = self._call("link_token_get", LinkTokenGetRequest(link_token=link_token))
        sessions = found.get("link_sessions") or []
        items = tuple(_added(r) for s in sessions for r in _item_results(s))
        if items:
            return banks.LinkOutcome("success", items)
        exited = [s for s in sessions if s.get("exit")]
        if exited:
            return banks.LinkOutcome("exited", message=_exit_words(exited[-1]))
        return banks.LinkOutcome("pending", message="Still finishing at Plaid…")

    def exchange(self, public_token: str) -> banks.Item:
        """The access token, and the item's institution from `/item/get` (a public token
        from the webhook comes without it)."""
        made = self._call("item_public_token_exchange",
                          ItemPublicTokenExchangeRequest(public_token=public_token))
        institution = self._institution(made["access_token"])
        return banks.Item(made["item_id"], made["access_token"], *institution)

    def _institution(self, access_token: str) -> tuple[str | None, str | None]:
        try:  # the public token is spent: a failure here must not lose the access token
            item = self._call("item_get", ItemGetRequest(access_token=access_token))["item"]
        except banks.ProviderError as problem:
            log.warning("Plaid's /item/get failed (%s); the institution stays unnamed",
                        problem.code)
            return None, None
        return item.get("institution_id"), item.get("institution_name")

    # --- data ---------------------------------------------------------------------------

    def accounts(self, access_token: str) -> list[banks.Account]:
        found = self._call("accounts_get", AccountsGetRequest(access_token=access_token))
        return [_account(a) for a in found["accounts"]]

    def sync(self, access_token: str, cursor: str | None) -> banks.SyncPage:
        fields = {"access_token": access_token, "count": SYNC_COUNT}
        if cursor:
            fields["cursor"] = cursor
        page = self._call("transactions_sync", TransactionsSyncRequest(**fields))
        return banks.SyncPage(
            added=[_txn(t) for t in page["added"]], modified=[_txn(t) for t in page["modified"]],
            removed=[r["transaction_id"] for r in page["removed"]],
            accounts=[_account(a) for a in page["accounts"]],
            next_cursor=page["next_cursor"], has_more=bool(page["has_more"]))

    def verification_key(self, key_id: str) -> dict:
        """Plaid's public key (a JWK) that signs webhooks, by its id."""
        found = self._call("webhook_verification_key_get",
                           WebhookVerificationKeyGetRequest(key_id=key_id))
        return found["key"].to_dict()

    def _call(self, operation: str, body):
        try:
            return getattr(self.api(), operation)(body, _request_timeout=TIMEOUT)
        except plaid.ApiException as problem:
            raise _error(problem) from None
        except plaid.exceptions.OpenApiException as problem:
            raise banks.ProviderError(f"Plaid's answer could not be read ({problem})"[:300],
                                      "UNREADABLE_RESPONSE", transient=True) from None
        except OSError as problem:  # no connection, timeout
            raise banks.ProviderError(f"Plaid did not answer ({type(problem).__name__})",
                                      "UNREACHABLE", transient=True) from None


def _host(config: Settings) -> str:
    return (config.plaid_api_url or HOSTS[config.plaid_env]).rstrip("/")


def _error(problem: plaid.ApiException) -> banks.ProviderError:
    """Plaid's error JSON in core's words: its code, and whether to try again."""
    try:
        body = json.loads(problem.body or "{}")
    except ValueError:
        body = {}
    code = str(body.get("error_code") or problem.status or "")
    message = body.get("display_message") or body.get("error_message") or str(problem.reason)
    transient = (problem.status or 0) >= 500 or problem.status == 429 or \
        body.get("error_type") in TRANSIENT_TYPES
    return banks.ProviderError(f"Plaid: {message}"[:300], code, transient=transient)


def _item_results(session) -> list:
    results = session.get("results")
    return list(results.get("item_add_results") or []) if results else []


def _added(result) -> banks.AddedItem:
    institution = result.get("institution")
    return banks.AddedItem(result["public_token"],
                           institution.get("institution_id") if institution else None,
                           institution.get("name") if institution else None)


def _exit_words(session) -> str:
    ended = session.get("exit")
    error = ended.get("error") if ended else None
    if error and error.get("display_message"):
        return str(error.get("display_message"))
    return "You left before finishing; nothing was connected."


def _account(account) -> banks.Account:
    balances = account.get("balances")
    current = balances.get("current") if balances else None
    currency = (balances.get("iso_currency_code") if balances else None) or "USD"
    return banks.Account(
        id=account["account_id"], name=account.get("name") or "Account",
        mask=account.get("mask"), type=str(account.get("type") or "other"),
        subtype=str(account["subtype"]) if account.get("subtype") else None,
        official_name=account.get("official_name"), currency=currency,
        balance=None if current is None else Decimal(str(current)))


def _txn(txn) -> banks.Txn:
    category = txn.get("personal_finance_category")
    return banks.Txn(
        id=txn["transaction_id"], account_id=txn["account_id"], date=_day(txn["date"]),
        name=txn.get("name") or txn.get("merchant_name") or "Transaction",
        amount=Decimal(str(txn["amount"])), merchant=txn.get("merchant_name"),
        category=(category.get("primary") if category else None) or _first(txn.get("category")),
        currency=txn.get("iso_currency_code") or txn.get("unofficial_currency_code") or "USD",
        pending=bool(txn.get("pending")))


def _first(values) -> str | None:
    return values[0] if values else None


def _day(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _aware(value) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)

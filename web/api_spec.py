"""The read API's OpenAPI 3.1 description, served at `/api/v1/openapi.json`. Kept
beside `api.py` and checked against its routes by the tests (every route described,
nothing described that isn't a route) and by an OpenAPI validator."""

from __future__ import annotations

VERSION = "1.0.0"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _page_of(name: str) -> dict:
    return {"type": "object", "required": ["data", "next_cursor"], "properties": {
        "data": {"type": "array", "items": _ref(name)},
        "next_cursor": {"type": ["string", "null"],
                        "description": "Pass as `cursor` for the next page; null on the last."}}}


ERRORS = {
    "400": {"$ref": "#/components/responses/BadRequest"},
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "403": {"$ref": "#/components/responses/Forbidden"},
    "429": {"$ref": "#/components/responses/RateLimited"},
}
NOT_FOUND = {"404": {"$ref": "#/components/responses/NotFound"}}
PAGING = [
    {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"},
     "description": "The `next_cursor` of the previous page. Pages stay stable while "
                    "transactions arrive: a row there when paging began comes exactly once."},
    {"name": "limit", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}},
]


def _id(name: str, what: str) -> dict:
    return {"name": name, "in": "path", "required": True, "description": what,
            "schema": {"type": "integer"}}


SCHEMAS = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "message"], "properties": {
            "code": {"type": "string", "examples": ["not_found"]},
            "message": {"type": "string"},
            "parameter": {"type": "string", "examples": ["cursor"],
                          "description": "The input that was wrong, for a 400."}}}}},
    "ExchangeRequest": {"type": "object", "required": ["email", "password"], "properties": {
        "email": {"type": "string", "format": "email"},
        "password": {"type": "string", "format": "password"},
        "label": {"type": "string", "maxLength": 100,
                  "description": "What the token is for, shown in the list "
                                 "(e.g. Accounting CS)."}}},
    "Exchanged": {"type": "object", "required": ["ok", "result", "token", "token_id"],
                  "properties": {
                      "ok": {"const": True},
                      "result": {"type": "string", "examples": [
                          "✅ Connected as ann@smith.example at Smith & Co (admin)"]},
                      "token": {"type": "string", "description": "Shown once: keep it safe."},
                      "token_id": {"type": "integer"},
                      "warning": {"type": ["string", "null"],
                                  "description": "Set when the firm has no clients yet."},
                      "staff": {"type": "object"}, "firm": {"type": "object"}}},
    "Refused": {"type": "object", "required": ["ok", "result", "reason", "fix", "code"],
                "properties": {
                    "ok": {"const": False},
                    "result": {"type": "string", "examples": ["❌ Wrong email or password"]},
                    "reason": {"type": "string"}, "fix": {"type": "string"},
                    "code": {"enum": ["wrong_credentials", "subscription_inactive",
                                      "suspended", "too_many_tries"]}}},
    "Token": {"type": "object", "required": ["id", "hint", "staff", "created_at"],
              "properties": {
                  "id": {"type": "integer"}, "hint": {"type": "string", "examples": ["lsk_AbCd…"]},
                  "label": {"type": "string"}, "staff": {"type": "string", "format": "email"},
                  "created_at": {"type": "string", "format": "date-time"},
                  "last_used_at": {"type": ["string", "null"], "format": "date-time"},
                  "revoked_at": {"type": ["string", "null"], "format": "date-time"}}},
    "Client": {"type": "object", "required": ["id", "name", "connections"], "properties": {
        "id": {"type": "integer"}, "name": {"type": "string"},
        "email": {"type": ["string", "null"]},
        "phone": {"type": ["string", "null"], "description": "E.164"},
        "connections": {"type": "array", "items": {"type": "object", "properties": {
            "id": {"type": "integer"}, "institution": {"type": "string"},
            "status": {"enum": ["active", "needs_reconnect", "disconnected"]}}}}}},
    "Account": {"type": "object", "required": ["id", "name", "institution", "connection"],
                "properties": {
                    "id": {"type": "integer"}, "name": {"type": "string"},
                    "official_name": {"type": ["string", "null"]},
                    "mask": {"type": ["string", "null"], "description": "Last digits."},
                    "type": {"type": "string"}, "subtype": {"type": ["string", "null"]},
                    "currency": {"type": "string", "examples": ["USD"]},
                    "balance": {"type": ["string", "null"], "examples": ["110.00"],
                                "description": "The current balance, a decimal string."},
                    "institution": {"type": "string"},
                    "connection": {"type": "object", "properties": {
                        "id": {"type": "integer"},
                        "status": {"enum": ["active", "needs_reconnect", "disconnected"]},
                        "synced_at": {"type": ["string", "null"], "format": "date-time"}}}}},
    "Transaction": {"type": "object",
                    "required": ["id", "account_id", "date", "name", "amount", "currency"],
                    "properties": {
                        "id": {"type": "integer"}, "account_id": {"type": "integer"},
                        "date": {"type": "string", "format": "date"},
                        "name": {"type": "string"},
                        "merchant_name": {"type": ["string", "null"]},
                        "category": {"type": ["string", "null"]},
                        "amount": {"type": "string", "examples": ["-4.33"],
                                   "description": "As the account holder sees it: negative "
                                                  "is money out, positive money in."},
                        "currency": {"type": "string"}, "pending": {"type": "boolean"}}},
    "Stages": {"type": "object", "description": "Clients who reached each stage (a later "
               "stage counts the earlier ones as reached).", "properties": {
                   s: {"type": "integer"} for s in
                   ("invited", "delivered", "opened", "accepted", "connected")}},
    "FunnelGroup": {"type": "object", "required": ["stages", "rates", "time_to_connect"],
                    "properties": {
                        "key": {"type": "string", "description": "The staff member's or bulk "
                                "run's id, or the channel ('' when none)."},
                        "label": {"type": "string", "examples": ["Ann Lee", "SMS",
                                                                 "Bulk invite #12"]},
                        "stages": _ref("Stages"),
                        "rates": {"type": "object", "description": "Each stage's share of "
                                  "the clients invited (null when nobody was)."},
                        "time_to_connect": {"type": "object", "properties": {
                            "connected": {"type": "integer"},
                            "median_seconds": {"type": ["number", "null"]},
                            "p90_seconds": {"type": ["number", "null"]}},
                            "description": "From the client's first invite of the period to "
                                           "their first bank connected or restored."},
                        "in_progress": {"type": "integer",
                                        "description": "Clients whose link still works."}}},
    "Funnel": {"allOf": [_ref("FunnelGroup"), {"type": "object", "properties": {
        "period": {"type": "object", "properties": {
            "from": {"type": "string", "format": "date-time"},
            "to": {"type": "string", "format": "date-time"},
            "label": {"type": "string", "examples": ["last 30 days"]}}},
        "by": {"enum": ["staff", "channel", "run", None]},
        "counted": {"const": "clients",
                    "description": "Each client once, however many links they were sent."},
        "stalls": {"type": "array", "items": {"type": "object", "properties": {
            "reason": {"enum": ["withdrawn", "revoked", "opted_out", "bank_failed", "no_bank",
                                "not_delivered", "not_accepted", "expired"]},
            "words": {"type": "string", "examples": ["Opened but didn't accept"]},
            "count": {"type": "integer"},
            "details": {"type": "array", "description": "The provider's reasons.",
                        "items": {"type": "object", "properties": {
                            "reason": {"type": "string"}, "count": {"type": "integer"}}}},
            "clients": {"type": "array", "description": "The first 10, the longest waiting "
                        "first.", "items": {"type": "object", "properties": {
                            "id": {"type": "integer"}, "name": {"type": "string"}}}}}}},
        "groups": {"type": "array", "items": _ref("FunnelGroup")}}}]},
}


def _error_response(text: str) -> dict:
    return _json(_ref("Error"), text)


def _paths() -> dict:
    return {
        "/tokens": {
            "post": {"summary": "Exchange a staff member's email and password for an API token",
                     "operationId": "exchangeToken", "security": [],
                     "requestBody": {"required": True, "content": {
                         "application/json": {"schema": _ref("ExchangeRequest")}}},
                     "responses": {
                         "201": _json(_ref("Exchanged"), "✅ Connected: the token, shown once"),
                         "400": ERRORS["400"],
                         "401": _json(_ref("Refused"), "❌ Wrong email or password"),
                         "403": _json(_ref("Refused"), "❌ Suspended, or subscription not active"),
                         "429": _json(_ref("Refused"), "❌ Too many tries")}},
            "get": {"summary": "API tokens: the firm's (admins) or your own (staff)",
                    "operationId": "listTokens",
                    "responses": {"200": _json({"type": "object", "properties": {
                        "data": {"type": "array", "items": _ref("Token")}}}, "The tokens"),
                        **ERRORS}}},
        "/tokens/{token_id}": {"delete": {
            "summary": "Revoke a token (admins: any of the firm's; staff: their own)",
            "operationId": "revokeToken", "parameters": [_id("token_id", "The token's id")],
            "responses": {"200": _json(_ref("Token"), "Revoked"), **ERRORS, **NOT_FOUND}}},
        "/clients": {"get": {
            "summary": "The firm's clients, by id", "operationId": "listClients",
            "parameters": PAGING, "responses": {
                "200": _json(_page_of("Client"), "A page of clients"), **ERRORS}}},
        "/clients/{client_id}/accounts": {"get": {
            "summary": "A client's bank accounts", "operationId": "listAccounts",
            "parameters": [_id("client_id", "The client's id")], "responses": {
                "200": _json({"type": "object", "properties": {
                    "data": {"type": "array", "items": _ref("Account")}}}, "The accounts"),
                **ERRORS, **NOT_FOUND}}},
        "/accounts/{account_id}/transactions": {"get": {
            "summary": "An account's transactions, newest first",
            "operationId": "listTransactions",
            "parameters": [_id("account_id", "The account's id"), *PAGING,
                           {"name": "since", "in": "query", "required": False,
                            "schema": {"type": "string"},
                            "description": "From this date (2026-11-01), or the last N "
                                           "days (30d)."}],
            "responses": {"200": _json(_page_of("Transaction"), "A page of transactions"),
                          **ERRORS, **NOT_FOUND}}},
        "/funnel": {"get": {
            "summary": "The firm's invite funnel: stages, time to connect, where clients stall",
            "operationId": "getFunnel",
            "parameters": [
                {"name": "since", "in": "query", "required": False,
                 "schema": {"type": "string", "default": "30d"},
                 "description": "The last N days (30d), or from a date (2026-11-01, from its "
                                "midnight in the firm's zone)."},
                {"name": "until", "in": "query", "required": False,
                 "schema": {"type": "string", "format": "date"},
                 "description": "Up to this date, included (default: now)."},
                {"name": "by", "in": "query", "required": False,
                 "schema": {"enum": ["staff", "channel", "run"]},
                 "description": "A group for each staff member who sent, channel, or bulk "
                                "run (each client under their first invite of the period)."}],
            "responses": {"200": _json(_ref("Funnel"), "The funnel"), **ERRORS}}},
        "/openapi.json": {"get": {
            "summary": "This description", "operationId": "openapi", "security": [],
            "responses": {"200": {"description": "OpenAPI 3.1"}}}},
    }


def spec(base_url: str) -> dict:
    return {
        "openapi": "3.1.0",
        "info": {"title": "LedgerSync Connect read API", "version": VERSION,
                 "description": "Read-only access to a firm's clients, their bank accounts "
                                "and transactions, and its invite funnel, for applications "
                                "connected with a staff member's LedgerSync email and "
                                "password."},
        "servers": [{"url": f"{base_url}/api/v1"}],
        "security": [{"token": []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer",
                                          "description": "An API token, `lsk_…`"}},
            "schemas": SCHEMAS,
            "responses": {
                "BadRequest": _error_response("A bad cursor, limit, date or group, or a body "
                                              "that isn't a JSON object"),
                "Unauthorized": _error_response("No token, or a revoked one"),
                "Forbidden": _error_response("Not allowed for this token's firm or role"),
                "NotFound": _error_response("Nothing of that id in this firm"),
                "RateLimited": _error_response("Over the rate limit: see Retry-After"),
            },
        },
    }

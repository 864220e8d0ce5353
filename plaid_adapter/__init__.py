"""Plaid: the bank-data provider's driver, beside `sms/` (Twilio) and `mail/` (SMTP).
(Not named `plaid`: that is the SDK's own package.)

- `provider.py` — `PlaidProvider`, core's bank-provider port through the real
  plaid-python SDK (Hosted Link, token exchange, accounts, /transactions/sync);
  `PLAID_API_URL` points it at another host (a local stand-in in the tests). A plain
  driver: no Flask, chosen by `wiring`.
- `verify.py` — the `Plaid-Verification` JWT of a webhook, checked as Plaid specifies.
- `webhooks.py` — `POST /banks/plaid/webhook`: verified, put in core's words, applied
  every time it comes, idempotent by state (`core.banking.provider_events`); the web
  app registers it when Plaid is the provider, as it registers `sms/`'s webhooks.
"""

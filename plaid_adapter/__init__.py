"""Plaid behind core's bank-provider port: the SDK adapter, webhook verification and
the webhook endpoint (a driver, as `sms/` is for Twilio)."""

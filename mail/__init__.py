"""Email out through SMTP: the `email` channel's sender (a driver, as `sms/` is for
texts)."""

"""LedgerSync Connect's core: invites, reminders, clients and connections.

Plain Python over peewee models; never imports Slack, Twilio or Flask. Drivers
(`bot/`, `sms/`, `web/`, `cli/`, `jobs/`) call the services and render results.
"""

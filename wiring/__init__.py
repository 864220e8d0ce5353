"""The one place that connects the drivers to core, for every process: the web
app (`web.create_app`), the `ledgersync` command and so the worker and the clock.

Core names no driver: it calls its ports (`core.ports`), and only this module fills
them, once, at start-up:
- the settings, the database and log redaction (`start`);
- the sender of each channel — Twilio or the outbox for texts, SMTP or the outbox
  for email, Slack or the outbox for firm notices — as the settings say;
- who shows a bulk run's progress (the Slack message updated in place);
- the bank-data provider (`BANK_PROVIDER`: the embedded sandbox, or Plaid through its
  SDK, `web/plaid/provider.py`), and who syncs bank data and sends automatic
  reconnect invites (a worker when there is a queue, else this process);
- with `jobs=True` and a Redis that answers, the job queue: deliveries, schedules
  and bulk runs go to RQ workers; otherwise they are done in this process.
"""

from __future__ import annotations

from functools import partial

import ops
from core import ports
from core.banking import banks, connections
from core.messaging import deliveries, outbound
from core.messaging.outbox import OutboxSender
from core.platform import config, db, logs
from core.platform.config import Settings
from ops.metrics import MeteredSender


def wire(settings: Settings | None = None, *, jobs: bool = True) -> Settings:
    """Start the process and fill core's ports (`core.ports`); the settings in force.
    With `jobs` and a Redis that answers, work goes to the workers; else it is done
    in this process."""
    settings = start(settings)
    if not (jobs and use_queue(settings)):
        inline()
    return settings


def start(settings: Settings | None = None) -> Settings:
    """What every process does first: log redaction, the settings, what the operator
    sees (JSON logs, error reports: `ops.start`), the database."""
    logs.redact_tokens()
    current = config.use(settings or config.settings())
    ops.start(current)
    db.bind(current.database_url)
    outbound.reset_senders()
    return current


def inline() -> None:
    """Every port filled for work done in this process, at the moment it is asked for
    (no queue: reminders and expiries are found by the sweep)."""
    ports.install(ports.Ports(
        senders=choose_sender, dispatcher=deliveries.deliver_now,
        bulk_progress=show_bulk_progress, bank_provider=choose_bank_provider,
        sync_runner=connections.sync_quietly))
    outbound.reset_senders()


def use_queue(settings: Settings | None = None) -> bool:
    """Hand work to the workers through RQ: deliveries, schedules, bulk runs, syncs and
    automatic reconnect invites, whether an asked-for sign-in code goes. False, and
nothing changed, when Redis doesn't answer."""
    from jobs import banks as bank_jobs
    from jobs import queues
    from jobs import signin as sign_in_jobs

    redis = queues.connection(settings)
    if not queues.available(redis):
        return False
    inline()
    ports.install(ports.current().with_(
        dispatcher=partial(queues.enqueue_deliveries, redis=redis),
        scheduler=partial(queues.schedule_at, redis=redis),
        bulk_runner=partial(queues.run_bulk, redis=redis), sync_runner=bank_jobs.request_sync,
        reconnect_scheduler=bank_jobs.schedule_auto_invite,
        sign_in_runner=sign_in_jobs.request_code, queued=True))
    return True


def choose_sender(channel: str, settings: Settings) -> outbound.Sender:
    """The sender of a channel (drivers imported only when chosen: a process that
    never texts never loads Twilio's SDK), each send counted (`ops.metrics`)."""
    provider = {"sms": settings.sms_provider, "email": settings.email_provider,
                "slack": settings.notice_provider}[channel]
    return MeteredSender(_sender(provider), provider)


def _sender(provider: str) -> outbound.Sender:
    if provider == "twilio":
        from sms.twilio_sender import TwilioSender

        return TwilioSender()
    if provider == "smtp":
        from mail.smtp import SmtpSender

        return SmtpSender()
    if provider == "slack":
        from bot.notices import SlackNoticeSender

        return SlackNoticeSender()
    return OutboxSender()


def show_bulk_progress(run_id: int, final: bool) -> None:
    """The run's progress message in Slack, when there is one (throttled there)."""
    if config.settings().notice_provider == "slack":
        from bot import progress

        progress.report(run_id, force=final)


_plaid: banks.BankProvider | None = None


def choose_bank_provider(settings: Settings) -> banks.BankProvider:
    """The bank provider the settings name: Plaid (one per process: its SDK client and
    its cache of webhook keys), else whatever core knows (the sandbox, `module:Class`)."""
    global _plaid
    if settings.bank_provider_name == "plaid":
        if _plaid is None:
            from plaid_adapter.provider import PlaidProvider

            _plaid = PlaidProvider()
        return _plaid
    return banks.load(settings)

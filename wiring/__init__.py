"""The one place that connects the drivers to core, for every process: the web
app (`web.create_app`), the `ledgersync` command and so the worker and the clock.

Core names no driver. Here, once, at start-up:
- the settings, the database and log redaction (`core.runtime.start`);
- the sender of each channel — Twilio or the outbox for texts, SMTP or the outbox
  for email, Slack or the outbox for firm notices — as the settings say;
- who shows a bulk run's progress (the Slack message updated in place);
- the bank-data provider (`BANK_PROVIDER`: the embedded sandbox, or Plaid through its
  SDK, `web/plaid/provider.py`), and who syncs bank data and sends automatic
  reconnect invites (a worker when there is a queue, else this process);
- with `jobs=True` and a Redis that answers, the job queue: deliveries, schedules,
  bulk runs and whether a sign-in code goes go to RQ workers; otherwise they are done
  in this process.
"""

from __future__ import annotations

from core import runtime
from core.banking import banks
from core.invitations import bulk
from core.messaging import deliveries, outbound
from core.messaging.outbox import OutboxSender
from core.platform import config
from core.platform.config import Settings


def wire(settings: Settings | None = None, *, jobs: bool = True) -> Settings:
    """Start the process and connect everything; the settings in force."""
    settings = runtime.start(settings)
    outbound.use_senders(choose_sender)
    outbound.set_dispatcher(deliveries.deliver_now)
    bulk.on_progress(show_bulk_progress)
    banks.use_provider(choose_bank_provider)
    if jobs:
        from jobs import banks as bank_jobs
        from jobs import queues
        from jobs import signin as signin_jobs

        queues.install(settings)
        bank_jobs.install()
        signin_jobs.install()
    return settings


def choose_sender(channel: str, settings: Settings) -> outbound.Sender:
    """The sender of a channel (drivers imported only when chosen: a process that
    never texts never loads Twilio's SDK)."""
    provider = {"sms": settings.sms_provider, "email": settings.email_provider,
                "slack": settings.notice_provider}[channel]
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

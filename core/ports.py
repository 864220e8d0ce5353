"""Every part that core hands work to and that a process can replace, named once.

Core never imports a driver, a queue or a scheduler. It calls what is installed here,
and only `wiring` installs it — once per process, at start-up (`wiring.wire`), as the
process's settings and its Redis allow. A reader following a hand-off jumps from the
call (`ports.current().dispatcher(ids)`) to the protocol below, and from there to
`wiring`, which says what fills it.

- `senders`: the sender of a channel (sms, email, slack) — Twilio, SMTP, Slack, or
  the outbox;
- `dispatcher`: deliver written messages (by id) — a job each, or now;
- `scheduler`: come back for an invite's reminder or expiry — RQ's scheduler, or
  nothing;
- `bulk_runner`: work on a confirmed bulk run — bulk jobs, or now;
- `bulk_progress`: show a run's progress as it goes — the Slack message, or nobody;
- `bank_provider`: the bank-data provider the settings name — the sandbox, Plaid, or
  `module:Class`;
- `sync_runner`: sync a connection's accounts and transactions — a job, or now;
- `reconnect_scheduler`: an automatic reconnect invite at its time — a job then, or
  nothing;
- `sign_in_runner`: decide whether an asked-for sign-in code goes — a job, or now.

`queued` says whether work goes to workers (a job queue answered at start-up).
Nothing depends on a scheduler keeping its word: the sweep finds in the database
whatever is due and was not done.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from core.platform.config import Settings


# What the ports hand out, as little as the ports need to name them: the domains refine
# each (`core.messaging.outbound.Sender`, `core.banking.banks.BankProvider`), so that
# nothing here looks up at the packages that use it.
class Sender(Protocol):
    """Sends one message through a provider (SMS, email, the outbox)."""

    def send(self, message): ...

    def find_sent(self, message): ...


class BankProvider(Protocol):
    """A bank provider: the sandbox, Plaid."""

    name: str
    flow: str


class SenderChooser(Protocol):
    def __call__(self, channel: str, settings: Settings) -> Sender: ...


class Dispatcher(Protocol):
    def __call__(self, message_ids: list[int]) -> None: ...


class Scheduler(Protocol):
    def __call__(self, task: str, invite_id: int, when: datetime) -> None:
        """`task` is `remind` or `expire`."""


class BulkRunner(Protocol):
    def __call__(self, run_id: int) -> None: ...


class ProgressReporter(Protocol):
    def __call__(self, run_id: int, final: bool) -> None: ...


class ProviderChooser(Protocol):
    def __call__(self, settings: Settings) -> BankProvider: ...


class SyncRunner(Protocol):
    def __call__(self, connection_id: int) -> None: ...


class ReconnectScheduler(Protocol):
    def __call__(self, connection_id: int, when: datetime) -> None: ...


class SignInRunner(Protocol):
    def __call__(self, attempt_id: int, asked: str) -> None:
        """`asked`: what was asked for, sealed (`sign_in.ask`)."""


@dataclass(frozen=True)
class Ports:
    senders: SenderChooser | None = None
    dispatcher: Dispatcher | None = None
    scheduler: Scheduler | None = None
    bulk_runner: BulkRunner | None = None
    bulk_progress: ProgressReporter | None = None
    bank_provider: ProviderChooser | None = None
    sync_runner: SyncRunner | None = None
    reconnect_scheduler: ReconnectScheduler | None = None
    sign_in_runner: SignInRunner | None = None
    queued: bool = False

    def with_(self, **changes) -> Ports:
        return replace(self, **changes)

    def missing(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) is None]


_current = Ports()


def current() -> Ports:
    return _current


def install(ports: Ports) -> Ports:
    """Put `ports` in place (`wiring`, at start-up); the ones they replace."""
    global _current
    before, _current = _current, ports
    return before

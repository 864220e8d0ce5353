"""Bulk runs as staff read them: progress, failures, the latest and recent runs, and
where a run's progress message is shown."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from peewee import fn

from core.platform.config import settings
from core.platform.errors import NotFound
from core.records import (
    BulkItem,
    BulkRun,
    Firm,
)


@dataclass(frozen=True)
class Progress:
    run: BulkRun
    counts: Counter
    total: int

    @property
    def left(self) -> int:
        return self.counts["queued"] + self.counts["sending"] + self.counts["waiting"]

    @property
    def eta_seconds(self) -> float:
        config = settings()
        return self.left / (config.sms_rate if self.run.channel != "email" else config.email_rate)


def progress(run_id: int) -> Progress:
    run = BulkRun.get_by_id(run_id)
    rows = (BulkItem.select(BulkItem.outcome, fn.COUNT(BulkItem.id).alias("n"))
            .where(BulkItem.run == run).group_by(BulkItem.outcome))
    counts = Counter({row.outcome: row.n for row in rows})
    return Progress(run, counts, sum(counts.values()))


def failures(run_id: int, outcome: str = "failed") -> list[BulkItem]:
    return list(BulkItem.select().where(BulkItem.run == run_id, BulkItem.outcome == outcome)
                .order_by(BulkItem.id))


def latest(firm: Firm, *, started: bool = False) -> BulkRun | None:
    """The firm's newest run (`started`: one confirmed, not just planned)."""
    runs = BulkRun.select().where(BulkRun.firm == firm)
    if started:
        runs = runs.where(BulkRun.status != "confirming")
    return runs.order_by(BulkRun.id.desc()).first()


def recent(firm: Firm, limit: int = 10) -> list[BulkRun]:
    return list(BulkRun.select().where(BulkRun.firm == firm).order_by(BulkRun.id.desc())
                .limit(max(1, limit)))


def shown_at(run_id: int, channel: str, ts: str) -> None:
    """Where the run's progress message is (so it can be updated in place)."""
    BulkRun.update(slack_channel=channel, slack_ts=ts).where(BulkRun.id == run_id).execute()


def get(firm: Firm, run_id: int) -> BulkRun:
    run = BulkRun.get_or_none(BulkRun.id == run_id, BulkRun.firm == firm)
    if run is None:
        raise NotFound("No such bulk run")
    return run

"""Prometheus metrics: their definitions, what is read at scrape time, and how a
scrape is answered. Drivers and jobs record (see docs/operations.md for who records
what, and the layout of processes); core knows nothing of it.

Where the numbers live. prometheus-client keeps a process's metrics in its memory —
or, when PROMETHEUS_MULTIPROC_DIR is set before it is first imported, in files there,
one set per process, merged at scrape time. `gunicorn.conf.py` gives gunicorn's
workers a directory of their own (made fresh by the master), so the web's `/metrics`
adds every worker up. A `ledgersync worker` runs its jobs in its own process and
keeps its numbers in memory, served on its METRICS_PORT (`serve_port`). Queue depths
and ages are read from Redis when the web is scraped (`QueueCollector`): counted once,
however many workers there are.
"""

from __future__ import annotations

import logging
import os
import time

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from redis import Redis, RedisError
from rq.job import Job
from rq.queue import Queue
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from rq.utils import utcparse

from core.platform.config import Settings

log = logging.getLogger(__name__)

HTTP_REQUESTS = Counter("ledgersync_http_requests", "HTTP requests answered",
                        ["route", "method", "status"])
HTTP_SECONDS = Histogram("ledgersync_http_request_duration_seconds",
                         "Time to answer an HTTP request", ["route", "method"],
                         buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
SLACK_ACK = Histogram("ledgersync_slack_ack_seconds",
                      "From a Slack request's arrival to its acknowledgement (Slack waits 3 s)",
                      ["command"], buckets=(.05, .1, .25, .5, 1, 1.5, 2, 2.5, 3, 5))
SLACK_ANSWER = Histogram("ledgersync_slack_answer_seconds",
                         "From a Slack request's arrival to its answer, posted or shown",
                         ["command"], buckets=(.25, .5, 1, 2, 3, 5, 10, 30, 60, 120, 300))
HTTP_QUEUED = Histogram("ledgersync_http_queue_seconds",
                        "From the proxy's stamp on a request (X-Request-Start) to the web "
                        "process taking it up", buckets=(.005, .01, .025, .05, .1, .25, .5, 1,
                                                         2.5, 5, 10))
PAGES_BUSY = Counter("ledgersync_pages_busy",
                     "Client pages answered 'busy' at once: the request had waited longer "
                     "than PAGE_BUSY_AFTER before the web process took it up")
JOBS = Counter("ledgersync_jobs", "Jobs run, by what ended them", ["job", "outcome"])
JOB_SECONDS = Histogram("ledgersync_job_duration_seconds", "Time a job ran", ["job"],
                        buckets=(.01, .05, .1, .25, .5, 1, 2.5, 5, 15, 30, 60, 120, 600))
DELIVERIES = Counter("ledgersync_deliveries",
                     "Messages handed to a provider, by what it answered",
                     ["channel", "provider", "outcome", "error"])
RECEIPTS = Counter("ledgersync_delivery_receipts", "Delivery receipts a provider posted",
                   ["provider", "status", "error"])
VERIFICATION_FAILURES = Counter("ledgersync_webhook_verification_failures",
                                "Requests refused for a bad or missing signature", ["source"])
BULK_ITEMS = Counter("ledgersync_bulk_items", "Bulk-run recipients worked, by result",
                     ["channel", "result"])
SIGNIN_CODES = Counter("ledgersync_signin_codes",
                       "Sign-in code requests decided: a code sent, or none (nobody's "
                       "address, or the hour's codes used)", ["outcome"])
SIGNIN_REFUSED = Counter("ledgersync_signin_refused", "Sign-in steps refused", ["reason"])
SLACK_BUSY = Counter("ledgersync_slack_busy",
                     "Slack requests answered 'busy, nothing was done': refused at the door "
                     "(the answer queue too far behind), given up by a worker (too late to "
                     "answer in time), or Redis away", ["command", "why"])

# Twilio's error codes, in a few plain classes (`error` label).
ERROR_CLASSES = {
    "30003": "unreachable", "30005": "unknown_number", "21211": "unknown_number",
    "30006": "landline", "21614": "landline", "30007": "carrier_filtered",
    "21610": "opted_out", "20429": "rate_limited", "21611": "rate_limited",
    "429": "rate_limited",
}
JOB_OUTCOMES = {"finished": "ok", "failed": "failed", "scheduled": "retry", "queued": "retry",
                "stopped": "stopped", "canceled": "canceled"}
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def error_class(code: str | int | None) -> str:
    if code in (None, ""):
        return "none"
    return ERROR_CLASSES.get(str(code).strip(), "other")


# --- recording ----------------------------------------------------------------------------


def http_answered(route: str, method: str, status: int, seconds: float) -> None:
    method = method if method in METHODS else "other"
    HTTP_REQUESTS.labels(route, method, str(status)).inc()
    HTTP_SECONDS.labels(route, method).observe(seconds)


def job_ran(job: str, status: str, seconds: float) -> None:
    JOBS.labels(job, JOB_OUTCOMES.get(status, status)).inc()
    JOB_SECONDS.labels(job).observe(seconds)


def receipt(provider: str, status: str, code: str | None) -> None:
    RECEIPTS.labels(provider, status, error_class(code)).inc()


def verification_failed(source: str) -> None:
    VERIFICATION_FAILURES.labels(source).inc()


class MeteredSender:
    """A channel's sender, each send counted by what the provider answered (its
    status, `retry` for a transient failure, `error` when it raised)."""

    def __init__(self, sender, provider: str):
        self._sender, self._provider = sender, provider

    def send(self, message):
        try:
            result = self._sender.send(message)
        except Exception:
            DELIVERIES.labels(message.channel, self._provider, "error", "other").inc()
            raise
        outcome = "retry" if result.retry else result.status
        DELIVERIES.labels(message.channel, result.provider, outcome,
                          error_class(result.error_code)).inc()
        return result

    def __getattr__(self, name):  # find_sent, warm, client…: the sender's own
        return getattr(self._sender, name)


# --- read at scrape time ---------------------------------------------------------------------


class QueueCollector:
    """Each queue's depth, the age of the job at its head (0 when empty), and its
    running, scheduled and failed jobs — read from Redis when scraped, in two round
    trips and without changing anything; `ledgersync_redis_up` 0 when Redis doesn't
    answer (give `redis` short timeouts: a scrape must answer)."""

    def __init__(self, redis: Redis, names: tuple[str, ...]):
        self.redis, self.names = redis, names

    def collect(self):
        up = GaugeMetricFamily("ledgersync_redis_up", "1 when Redis answered this scrape")
        try:
            families = self._read()
        except (RedisError, OSError):
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        return [*families, up]

    def _read(self) -> list[GaugeMetricFamily]:
        with self.redis.pipeline(transaction=False) as pipe:
            for name in self.names:
                key = Queue.redis_queue_namespace_prefix + name
                pipe.llen(key).lindex(key, 0)
                for registry in (StartedJobRegistry, ScheduledJobRegistry, FailedJobRegistry):
                    pipe.zcard(registry.key_template.format(name))
            counts = pipe.execute()
        rows = [counts[i:i + 5] for i in range(0, len(counts), 5)]
        ages = self._ages([row[1] for row in rows])
        families = [GaugeMetricFamily(f"ledgersync_queue_{what}", text, labels=["queue"])
                    for what, text in QUEUE_FAMILIES]
        for name, (depth, _head, running, scheduled, failed), age in zip(
                self.names, rows, ages, strict=True):
            for family, value in zip(families, (depth, age, running, scheduled, failed),
                                     strict=True):
                family.add_metric([name], value)
        return families

    def _ages(self, heads: list) -> list[float]:
        with self.redis.pipeline(transaction=False) as pipe:
            for head in filter(None, heads):
                pipe.hget(Job.key_for(head.decode()), "enqueued_at")
            stamps = iter(pipe.execute())
        found = [next(stamps) if head else None for head in heads]
        now = time.time()
        return [max(0.0, now - utcparse(stamp.decode()).timestamp()) if stamp else 0.0
                for stamp in found]


QUEUE_FAMILIES = (
    ("depth", "Jobs waiting in the queue"),
    ("oldest_job_age_seconds", "How long the job at the head of the queue has waited"),
    ("running_jobs", "Jobs a worker is running"),
    ("scheduled_jobs", "Jobs scheduled for later (reminders, expiries, paced texts)"),
    ("failed_jobs", "Jobs that failed for good (kept a week)"),
)


class SettingsCollector:
    """The sending pace in force (`SMS_RATE`, `EMAIL_RATE`), to draw beside the rate
    bulk texts go out at."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def collect(self):
        rate = GaugeMetricFamily("ledgersync_send_rate_limit",
                                 "Messages a second the sending pace allows", labels=["channel"])
        rate.add_metric(["sms"], self.settings.sms_rate)
        rate.add_metric(["email"], self.settings.email_rate)
        return [rate]


class _ThisProcess:
    def collect(self):
        return REGISTRY.collect()


def scrape_registry(*read_when_scraped) -> CollectorRegistry:
    """What a scrape answers: every gunicorn worker's numbers merged (under
    PROMETHEUS_MULTIPROC_DIR) or this process's own, and the collectors given."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    for collector in read_when_scraped:
        registry.register(collector)
    return registry


def exposition(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """The body and content type of a scrape's answer, in the format the scraper asked
    for (`Accept`: Prometheus's text format by default, or OpenMetrics)."""
    encode, content_type = choose_encoder(accept or "")
    return encode(registry), content_type


def serve_port(settings: Settings, registry: CollectorRegistry | None = None):
    """Serve `registry` (default: this process's metrics) on METRICS_ADDR:METRICS_PORT,
    from a thread; nothing without a METRICS_PORT. A port already taken (another
    process of this host has it) is logged and skipped: the process runs on."""
    if not settings.metrics_port:
        return None
    try:
        server, _thread = start_http_server(settings.metrics_port, addr=settings.metrics_addr,
                                            registry=registry or scrape_registry())
    except OSError as problem:
        log.warning("metrics: can't serve on %s:%s (%s); this process's metrics are not "
                    "served", settings.metrics_addr, settings.metrics_port, problem)
        return None
    log.info("metrics on http://%s:%s/metrics", settings.metrics_addr, settings.metrics_port)
    return server

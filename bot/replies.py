"""Answers posted to Slack's `response_url`, never lost and never twice.

A post that meets a 5xx, a 429 (its `Retry-After` honoured) or a dropped
connection is tried again at once a few times (slack_sdk's retry handlers); if it
still fails, a job tries it again later with backoff, within the half hour a
`response_url` lives. A 4xx other than 429 is a refusal: logged, not retried.
The answer is worked out once; only its post is repeated. While it waits in Redis
it is sealed (ENCRYPTION_KEYS): the response URL can post for half an hour, and an
answer may hold a one-time link or a client's details."""

from __future__ import annotations

import json
import logging

from rq import Retry
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.webhook import WebhookClient

from core import ports
from core.platform import tokens
from jobs import queues

log = logging.getLogger(__name__)
LATER = Retry(max=6, interval=[10, 30, 60, 120, 300, 600])  # 18 min in all, inside 30
RESPONSE_URL_LIFE = 1800


class NotPosted(Exception):
    """Slack did not take the answer yet (5xx, 429, no connection): try again later."""


def _client(url: str) -> WebhookClient:
    return WebhookClient(url, timeout=10, retry_handlers=[
        ConnectionErrorRetryHandler(max_retry_count=2),
        RateLimitErrorRetryHandler(max_retry_count=2),
        ServerErrorRetryHandler(max_retry_count=2),
    ])


def post(url: str, answer: dict) -> bool:
    """Post now (with quick retries); True when Slack took it or refused it for good."""
    if not url:
        return True
    try:
        status = _client(url).send_dict(answer).status_code
    except OSError as problem:
        log.info("slack answer: no connection (%s)", type(problem).__name__)
        return False
    if status == 200:
        return True
    if status == 429 or status >= 500:
        log.info("slack answer: response_url answered %s", status)
        return False
    log.warning("slack answer refused by Slack (HTTP %s); not retried", status)
    return True


def send(url: str, answer: dict) -> None:
    """Post the answer; if Slack can't take it now, a job posts it later."""
    if post(url, answer):
        return
    if not ports.current().queued:
        log.warning("slack answer lost: Slack did not take it and there is no job queue")
        return
    sealed = tokens.seal(json.dumps({"url": url, "answer": answer}))
    queues.queue("high").enqueue(post_later, sealed, retry=LATER,
                                 ttl=RESPONSE_URL_LIFE, failure_ttl=86400)


def post_later(sealed: str) -> str:
    """The job: raises while Slack can't take it, so RQ tries again with backoff."""
    opened = tokens.unseal(sealed)
    if opened is None:
        log.warning("slack answer: sealed under a key no longer in ENCRYPTION_KEYS; dropped")
        return "dropped"
    wanted = json.loads(opened)
    if not post(wanted["url"], wanted["answer"]):
        raise NotPosted("Slack did not take the answer yet")
    return "posted"

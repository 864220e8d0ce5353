"""Sign-in codes' job. Asking for a code does the same work whoever has the address:
the request writes the attempt and hands it here, and a worker decides whether a code
goes (`core.invitations.sign_in.send_code`). What is handed on is sealed: the queue never holds the
code or the address in the clear.

With a queue, `wiring.use_queue` puts `request_code` in core's `sign_in_runner` port;
a process without one (Redis away, tests) does the work itself, at once.
"""

from __future__ import annotations

import logging

from redis import RedisError

from core.invitations import sign_in
from ops import metrics

from . import queues
from .tasks import unit_of_work

log = logging.getLogger(__name__)
OPTIONS = {"job_timeout": 60, **queues.KEPT}


def request_code(attempt_id: int, asked: str) -> None:
    """The `sign_in_runner` port with a queue: the decision as a job on `high`."""
    try:
        queues.queue("high").enqueue("jobs.signin.send_code", attempt_id, asked, **OPTIONS)
    except RedisError:
        log.warning("Redis refused sign-in attempt %s; its code is decided here", attempt_id)
        decided(sign_in.send_code(attempt_id, asked))


@unit_of_work
def send_code(attempt_id: int, asked: str) -> str:
    """Send the attempt's code, if its address is a client's (once)."""
    return decided(sign_in.send_code(attempt_id, asked))


def decided(outcome: str) -> str:
    """Count what became of an attempt the first time it is decided ("1 sent", "0 sent";
    "nothing to do" is a repeat): `ledgersync_signin_codes_total`."""
    count, _, word = outcome.partition(" ")
    if word == "sent" and count.isdigit():
        metrics.SIGNIN_CODES.labels("sent" if int(count) else "none").inc()
    return outcome

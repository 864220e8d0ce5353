"""Sign-in codes' job. Asking for a code does the same work whoever has the address:
the request writes the attempt and hands it here, and a worker decides whether a code
goes (`core.signin.send_code`). What is handed on is sealed: the queue never holds the
code or the address in the clear.

`install` (called by `wiring.wire` with the queue) makes core hand attempts to the
workers; a process without a queue (Redis away, tests) does the work itself, at once.
"""

from __future__ import annotations

import logging

from redis import RedisError

from core.invitations import sign_in
from core.platform import db

from . import queues

log = logging.getLogger(__name__)
OPTIONS = {"job_timeout": 60, **queues.KEPT}


def install() -> None:
    sign_in.set_runner(request_code)


def request_code(attempt_id: int, asked: str) -> None:
    if not queues.installed():
        sign_in.send_code(attempt_id, asked)
        return
    try:
        queues.queue("high").enqueue("jobs.signin.send_code", attempt_id, asked, **OPTIONS)
    except RedisError:
        log.warning("Redis refused sign-in attempt %s; its code is decided here", attempt_id)
        sign_in.send_code(attempt_id, asked)


def send_code(attempt_id: int, asked: str) -> str:
    """Send the attempt's code, if its address is a client's (once)."""
    with db.kept():
        return sign_in.send_code(attempt_id, asked)

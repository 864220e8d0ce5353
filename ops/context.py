"""What a log line, an error report and a measurement know of the work they belong to:
the request id (given to each web request, answered in its `X-Request-ID` header and
carried into the jobs it enqueues, `jobs.queues`), the firm when it is known, the job
being run, and when the request arrived (for how long a Slack answer took).

Held in context variables, so each thread and each request sees its own. A thread
pool started by a request does not inherit them: `CarryingExecutor` hands them over.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar

FIELDS = ("request_id", "firm_id", "job_id")  # what a log line and an error report show
CARRIED = ("request_id", "firm_id", "received")  # what a job takes from its request
_vars: dict[str, ContextVar] = {name: ContextVar(f"ledgersync_{name}", default=None)
                                for name in (*FIELDS, "received")}
_GIVEN_ID = re.compile(r"[A-Za-z0-9._:-]{8,128}")


def current() -> dict:
    """The fields bound now (request id, firm id, job id), without the unset ones."""
    return {name: _vars[name].get() for name in FIELDS if _vars[name].get() is not None}


def carried() -> dict:
    """What a job enqueued now takes with it (see `jobs.queues.Queue`)."""
    return {name: _vars[name].get() for name in CARRIED if _vars[name].get() is not None}


def bind(**values) -> list:
    """Bind fields (unknown names are ignored); `unbind` what this returns."""
    return [(_vars[name], _vars[name].set(value)) for name, value in values.items()
            if name in _vars]


def unbind(tokens: list) -> None:
    for var, token in reversed(tokens):
        var.reset(token)


@contextmanager
def bound(**values) -> Iterator[None]:
    tokens = bind(**values)
    try:
        yield
    finally:
        unbind(tokens)


def request_id(given: str | None = None) -> str:
    """The id of a new request: the one a trusted proxy gave (`X-Request-ID`, when it
    looks like an id), else a new random one."""
    if given and _GIVEN_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


def since_received(default: float | None = None) -> float | None:
    """Seconds since the request being answered arrived (None when unknown)."""
    received = _vars["received"].get()
    return default if received is None else max(0.0, time.time() - received)


class CarryingExecutor(ThreadPoolExecutor):
    """A thread pool whose tasks see the fields bound where they were submitted."""

    def submit(self, fn, /, *args, **kwargs):
        values = carried() | current()
        return super().submit(_run_bound, values, fn, *args, **kwargs)


def _run_bound(values: dict, fn, *args, **kwargs):
    with bound(**values):
        return fn(*args, **kwargs)

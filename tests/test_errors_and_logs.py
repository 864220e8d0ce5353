"""Hearing about errors, and reading the logs: error reports reach Sentry (a local
stand-in for its endpoint, through the real sentry-sdk) with no working link, token,
code or secret in them; `LOG_FORMAT=json` writes one JSON object a line, and the
request id a response carries is the one on the log lines of the jobs it enqueued."""

from __future__ import annotations

import io
import json
import logging
import secrets

import pytest

import wiring
from core.invitations import invites
from core.platform import config, tokens
from jobs import queues
from jobs.worker import LedgerSyncWorker
from ops import context, errors
from ops import logs as json_logs
from tests.conftest import make_settings
from tests.helpers import csrf
from tests.sentry_standin import SentryStandIn

MARIA = "+12125550134"
PATIENCE = 60.0  # seconds: the cap on sending the reports, reached only by a broken run


@pytest.fixture
def sentry(database):
    """Error reports on, to the stand-in, for this test only."""
    with SentryStandIn() as stand_in:
        yield stand_in
        errors.stop()


def failing(link: str, code: str) -> None:
    """A job that fails with a live link and a Slack token in its locals and message."""
    slack_token = "xoxb-" + secrets.token_hex(12)
    raise RuntimeError(f"could not send {link} (code {code}) with {slack_token}")


def leaked(stand_in: SentryStandIn, *secrets_: str) -> list[str]:
    received = stand_in.everything()
    return [s for s in secrets_ if s in received]


def test_an_unexpected_error_reaches_sentry_without_the_link_token_or_code(sentry, maria):
    from web import create_app

    settings = config.settings().with_(sentry_dsn=sentry.dsn, redis_url="redis://127.0.0.1:1/0")
    app = create_app(settings)
    wiring.inline()
    token = tokens.unseal(invites.send(maria, "sms").invite.token_sealed)
    link = f"{settings.public_base_url}/i/{token}"  # live: it opens Maria's invite
    code = f"{secrets.randbelow(10**6):06d}"
    slack_token = "xoxb-" + secrets.token_hex(12)

    @app.get("/boom")
    def boom():
        raise RuntimeError(f"could not send {link} (sign-in code {code}) with {slack_token}")

    answer = app.test_client().get("/boom")
    assert answer.status_code == 500
    errors.stop(timeout=PATIENCE)  # sends what waits (at once, on a machine not busy)
    [event] = sentry.events()
    [raised] = event["exception"]["values"]
    assert raised["type"] == "RuntimeError"
    assert answer.headers["X-Error-Ref"] in json.dumps(event)  # the report of that 500
    assert event["tags"]["request_id"] == answer.headers["X-Request-ID"]
    assert f"/i/{token[:4]}…" in raised["value"] and "xoxb-" in raised["value"]  # masked
    assert f"/i/{token[:4]}…" in raised["stacktrace"]["frames"][-1]["vars"]["link"]
    assert leaked(sentry, token, slack_token[5:], code, settings.secret_key) == []


def test_a_failed_job_reaches_sentry_masked_and_with_its_request_id(sentry, maria, redis_conn):
    errors.init(config.settings().with_(sentry_dsn=sentry.dsn))
    token = tokens.unseal(invites.send(maria, "sms").invite.token_sealed)
    link = f"https://connect.example.com/i/{token}"
    code = f"{secrets.randbelow(10**6):06d}"
    with context.bound(request_id="req-from-the-web-0001"):
        job = queues.queue("default", redis_conn).enqueue(
            "tests.test_errors_and_logs.failing", link, code)
    LedgerSyncWorker([queues.queue("default", redis_conn)], connection=redis_conn).work(
        burst=True, with_scheduler=False)
    errors.stop(timeout=PATIENCE)  # sends what waits (at once, on a machine not busy)
    [event] = sentry.events()
    assert event["extra"]["rq-job"]["job_id"] == job.id
    assert event["tags"]["request_id"] == "req-from-the-web-0001"
    assert leaked(sentry, token, code) == [] and "xoxb-" in sentry.everything()


@pytest.fixture
def json_lines():
    """LOG_FORMAT=json in this process; the lines written, parsed, one object each."""
    root = logging.getLogger()
    before = list(root.handlers)
    stream = io.StringIO()
    json_logs.configure("json", stream)

    def read() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield read
    root.handlers[:] = before


@pytest.fixture
def queued(database, twilio_settings, redis_conn):
    """The app as production runs it: Redis answers, so work goes to the workers."""
    from web import create_app

    app = create_app(config.settings())
    yield app.test_client()
    wiring.inline()


def test_json_lines_carry_the_request_id_into_the_jobs_it_enqueued(json_lines, queued,
                                                                    redis_conn, maria):
    page = queued.get("/account/sign-in")
    asked = queued.post("/account/sign-in", data={"csrf_token": csrf(page), "address": MARIA})
    request_id = asked.headers["X-Request-ID"]
    refused = queued.post("/sms/status", data={"MessageSid": "SM1", "MessageStatus": "sent"})
    assert refused.status_code == 403
    token = tokens.unseal(invites.send(maria, "sms").invite.token_sealed)
    queues.queue("default").enqueue("tests.test_errors_and_logs.failing",
                                    f"https://connect.example.com/i/{token}", "123456")
    LedgerSyncWorker([queues.queue(n, redis_conn) for n in queues.QUEUES],
                     connection=redis_conn).work(burst=True, with_scheduler=False)
    lines = json_lines()
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    [warned] = [line for line in lines if line["logger"] == "sms.webhooks"]
    assert warned["request_id"] == refused.headers["X-Request-ID"] != request_id
    [done] = [line for line in lines if "Job OK" in line["message"]
              and line.get("request_id")]  # the sign-in code's job
    assert done["request_id"] == request_id and done["job_id"] in done["message"]
    [failed] = [line for line in lines if "RuntimeError" in line["message"]]  # RQ's own line
    assert failed["level"] == "ERROR" and failed["job_id"] and "arguments" not in failed
    assert token not in json.dumps(lines)  # neither in the message nor the traceback


def test_the_request_id_is_the_proxys_only_behind_a_trusted_proxy(sqlite_database):
    from web import create_app

    given = {"X-Request-ID": "lb-7f3a9c2e-0001"}
    direct = create_app(config.settings().with_(redis_url="redis://127.0.0.1:1/0"))
    behind = create_app(config.settings().with_(redis_url="redis://127.0.0.1:1/0", proxy_hops=1))
    wiring.inline()
    assert direct.test_client().get("/healthz", headers=given).headers["X-Request-ID"] != \
        given["X-Request-ID"]
    assert behind.test_client().get("/healthz", headers=given).headers["X-Request-ID"] == \
        given["X-Request-ID"]


def test_without_a_dsn_nothing_is_started():
    assert errors.init(make_settings("sqlite://")) is False


def test_an_error_reference_survives_the_reports_masking():
    """The reference a person quotes to support is found in the report: never all
    digits, which the masking takes for a sign-in code (about one in seventeen was)."""
    refs = {errors.reference() for _ in range(2000)}
    assert all(len(ref) == 6 and int(ref, 16) >= 0 for ref in refs)
    assert [ref for ref in refs if errors.masked(f"unhandled error (ref {ref})")
            != f"unhandled error (ref {ref})"] == []
    assert errors.masked("unhandled error (ref 251259)") == "unhandled error (ref ••••••)"

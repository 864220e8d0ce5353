"""Slack under load: the web process verifies, resolves who is asking, acknowledges
and hands the work to the workers (queue `high`); a worker works the answer out and
posts it to the response URL — never lost, never twice. Signed requests into the
real Flask app, the real Redis, RQ's own worker, the Slack stand-in."""

from __future__ import annotations

import json

import pytest

import wiring
from core import ports
from core.messaging import outbound
from core.platform import config
from core.records import Invite
from jobs.worker import LedgerSyncWorker
from tests.slack_requests import SECRET, button, command
from tests.slack_standin import TEAM


@pytest.fixture
def queued_app(sqlite_database, smith, slack, redis_conn):
    """The app as production runs it: Redis answers, so the work goes to the queue."""
    from web import create_app

    settings = config.settings().with_(slack_signing_secret=SECRET, slack_bot_token="xoxb-test",
                                       slack_api_url=slack.api_url)
    app = create_app(settings)
    assert ports.current().queued
    outbound.reset_senders()
    yield app.test_client()
    wiring.inline()


def work(redis_conn) -> int:
    """Run every queued job in this process, as a worker would; how many ran."""
    from jobs import queues

    worker = LedgerSyncWorker([queues.queue(n, redis_conn) for n in queues.QUEUES],
                          connection=redis_conn)
    worker.work(burst=True, with_scheduler=False)
    worker.refresh()
    return worker.successful_job_count + worker.failed_job_count


def answers(slack, key: str = "cmd") -> list[dict]:
    return slack.of(f"respond:{key}")


def test_the_request_acks_and_a_worker_answers(queued_app, slack, redis_conn):
    reply = command(queued_app, slack, "status maria")
    assert reply.status_code == 200 and not reply.data  # acknowledged, nothing more
    assert answers(slack) == []  # the answer is the worker's
    assert work(redis_conn) == 1
    [answer] = answers(slack)
    assert "Maria Gonzalez" in json.dumps(answer) and answer["response_type"] == "ephemeral"


def test_an_invite_worked_out_on_a_worker_sends_once(queued_app, slack, redis_conn):
    command(queued_app, slack, "invite maria sms")
    work(redis_conn)  # the answer, then the text it queued
    assert Invite.select().count() == 1
    assert "Invited" in json.dumps(answers(slack))
    assert work(redis_conn) == 0  # nothing left, nothing twice


def test_what_opens_a_modal_stays_in_the_request(queued_app, slack, redis_conn):
    command(queued_app, slack, "client add")
    assert len(slack.wait_for("views.open")) == 1  # within the 3 s of its trigger_id
    assert work(redis_conn) == 0


def test_a_button_is_answered_by_a_worker_too(queued_app, slack, smith, redis_conn):
    from core.invitations import clients

    maria = clients.find(smith, "maria")
    button(queued_app, slack, "resend", maria.id)
    assert answers(slack, "button") == []
    work(redis_conn)
    [card] = answers(slack, "button")
    assert card["replace_original"] is True and "Maria Gonzalez" in json.dumps(card)


def test_an_answer_turned_away_twice_arrives_once(queued_app, slack, redis_conn):
    slack.unavailable["cmd"] = [503, 503]
    command(queued_app, slack, "status maria")
    work(redis_conn)
    assert [status for _, status in slack.turned_away] == [503, 503]
    assert len(answers(slack)) == 1


def test_an_answer_slack_cannot_take_now_is_posted_later_once(queued_app, slack, redis_conn):
    slack.unavailable["cmd"] = [503, 429, 503, 503]  # more than the quick retries
    command(queued_app, slack, "status maria")
    assert work(redis_conn) == 2  # the answer, then its later post (RQ retries it)
    assert len(slack.turned_away) == 4
    assert len(answers(slack)) == 1


def test_an_answer_slack_refuses_is_not_retried(queued_app, slack, redis_conn):
    slack.unavailable["cmd"] = [404]
    command(queued_app, slack, "status maria")
    assert work(redis_conn) == 1
    assert answers(slack) == [] and len(slack.turned_away) == 1


def test_with_redis_down_the_request_answers_busy(queued_app, slack, smith):
    from prometheus_client import REGISTRY

    def counted():
        return REGISTRY.get_sample_value("ledgersync_slack_busy_total",
                                         {"command": "invite", "why": "redis"}) or 0

    config.use(config.settings().with_(redis_url="redis://127.0.0.1:1/0"))
    before = counted()
    reply = command(queued_app, slack, "invite maria sms")
    assert reply.status_code == 200
    assert "LedgerSync is busy" in reply.json["text"] and reply.json["response_type"] == "ephemeral"
    assert Invite.select().count() == 0  # nothing was done
    assert counted() == before + 1  # (an operator sees why: `why="redis"`)
    from core.invitations import clients

    button(queued_app, slack, "resend", clients.find(smith, "maria").id)
    assert "LedgerSync is busy" in json.dumps(slack.wait_for("respond:button"))


def test_the_answer_job_checks_who_is_asking_again(queued_app, slack, redis_conn):
    command(queued_app, slack, "status maria", user="USTRANGER")
    work(redis_conn)
    text = json.dumps(answers(slack))
    assert "Maria Gonzalez" not in text and "connect" in text.lower()
    command(queued_app, slack, "status maria", team=TEAM, user="UANN")
    work(redis_conn)
    assert "Maria Gonzalez" in json.dumps(answers(slack)[-1])


def test_with_the_database_away_the_worker_still_answers(queued_app, slack, redis_conn):
    from core.platform import db

    command(queued_app, slack, "status maria")
    working = db.database.obj
    db.bind("postgresql://postgres@127.0.0.1:1/nowhere")
    try:
        work(redis_conn)
    finally:
        db.database.initialize(working)
    [answer] = answers(slack)
    assert "Something went wrong" in answer["text"] and "Quote ref" in answer["text"]


def test_a_post_that_keeps_failing_is_retried_by_rq_and_arrives_once(
        queued_app, slack, redis_conn):
    from rq import Queue
    from rq.job import Job
    from rq.registry import ScheduledJobRegistry

    slack.unavailable["cmd"] = [503] * 6  # the answer's quick tries, then the job's first run
    command(queued_app, slack, "status maria")
    work(redis_conn)
    assert answers(slack) == [] and len(slack.turned_away) == 6
    high = Queue("high", connection=redis_conn)
    [retry_id] = ScheduledJobRegistry(queue=high).get_job_ids()  # RQ's Retry, with backoff
    high.enqueue_job(Job.fetch(retry_id, connection=redis_conn))  # its time, come now
    work(redis_conn)
    assert len(answers(slack)) == 1


def test_an_answer_job_that_dies_still_tells_the_person(queued_app, slack, redis_conn):
    from rq import Callback, Queue

    from bot import deferral

    body = {"command": "/ledgersync", "text": "status maria", "team_id": TEAM,
            "user_id": "UANN", "response_url": slack.response_url()}
    Queue("high", connection=redis_conn).enqueue(
        deferral.answer_later, "no-such-listener", deferral._sealed(body),
        on_failure=Callback(deferral.answer_failed))
    work(redis_conn)
    [answer] = answers(slack)
    assert "Something went wrong with `status`" in answer["text"]
    assert "check before trying again" in answer["text"]


def test_work_waiting_in_redis_is_sealed(queued_app, slack, redis_conn):
    """The request waiting for a worker, and an answer waiting to be posted again,
    hold a response URL (it can post for half an hour) and client names: neither is
    readable in Redis."""
    from rq import Queue
    from rq.job import Job
    from rq.registry import ScheduledJobRegistry

    def stored() -> str:
        high = Queue("high", connection=redis_conn)
        jobs = high.jobs + [Job.fetch(i, connection=redis_conn)
                            for i in ScheduledJobRegistry(queue=high).get_job_ids()]
        assert jobs
        return repr([(job.args, job.kwargs) for job in jobs])

    slack.unavailable["cmd"] = [503] * 6  # the quick tries, then the job's first run
    command(queued_app, slack, "status maria")
    assert "respond/cmd" not in stored() and "maria" not in stored()
    work(redis_conn)  # answered: the post failed, a retry job waits
    assert "respond/cmd" not in stored() and "Maria" not in stored()


def _the_answers_wait(redis_conn, seconds: float) -> None:
    """A job has waited `seconds` on `high` (its enqueue time set back)."""
    from datetime import UTC, datetime, timedelta

    from rq import Queue

    job = Queue("high", connection=redis_conn).enqueue("tests.test_slack_workers.nothing")
    back = datetime.now(UTC) - timedelta(seconds=seconds)
    redis_conn.hset(f"rq:job:{job.id}", "enqueued_at", back.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


def nothing() -> None:
    pass


def test_when_answers_are_behind_a_change_is_refused_at_once_and_a_read_still_queues(
        queued_app, slack, redis_conn):
    """The oldest answer has waited 5 s (over BUSY_AFTER, 3 s): `invite` is answered
    "busy, nothing was done" in the acknowledgement itself, and nothing is done;
    `status` (it only reads) still goes to the workers."""
    from rq import Queue

    _the_answers_wait(redis_conn, 5)
    busy = command(queued_app, slack, "invite maria sms")
    assert busy.status_code == 200 and "LedgerSync is busy: nothing was done" in busy.text
    assert Invite.select().count() == 0
    assert Queue("high", connection=redis_conn).count == 1  # the old job alone
    queued = command(queued_app, slack, "status maria")
    assert queued.status_code == 200 and not queued.data
    assert Queue("high", connection=redis_conn).count == 2


def _taken_lately(redis_conn, per_second: int) -> None:
    """The workers took `per_second` jobs from `high` in each of the last two seconds
    (as `LedgerSyncWorker` counts them, on Redis's clock)."""
    now = redis_conn.time()[0]
    for second in (now - 2, now - 1):
        redis_conn.set(f"ledgersync:taken:high:{second}", per_second, ex=10)


def test_when_the_line_grows_faster_than_the_workers_take_it_a_change_is_refused(
        queued_app, slack, redis_conn):
    """The oldest answer has waited only 1.5 s, but 40 wait and the workers took 5 a
    second lately: 8 s of work ahead, so `invite` is answered busy at once. Taken at 50
    a second, the same line is under a second's work: the invite is queued."""
    from rq import Queue

    _the_answers_wait(redis_conn, 1.5)
    for _ in range(39):
        Queue("high", connection=redis_conn).enqueue("tests.test_slack_workers.nothing")
    _taken_lately(redis_conn, 5)
    busy = command(queued_app, slack, "invite maria sms")
    assert "LedgerSync is busy: nothing was done" in busy.text
    assert Queue("high", connection=redis_conn).count == 40
    _taken_lately(redis_conn, 50)
    queued = command(queued_app, slack, "invite maria sms")
    assert queued.status_code == 200 and not queued.data
    assert Queue("high", connection=redis_conn).count == 41


def test_a_worker_counts_the_answers_it_takes(queued_app, slack, redis_conn):
    command(queued_app, slack, "status maria")
    command(queued_app, slack, "status maria")
    assert work(redis_conn) == 2
    counted = [int(redis_conn.get(key)) for key in redis_conn.keys("ledgersync:taken:high:*")]
    assert sum(counted) == 2 and all(redis_conn.ttl(k) > 0
                                     for k in redis_conn.keys("ledgersync:taken:high:*"))


def test_an_answer_a_worker_picks_up_too_late_is_busy_and_changes_nothing(
        queued_app, slack, redis_conn, monkeypatch):
    """Picked up 9 s after the request (over the 8 s an answer may take): the worker
    answers "busy, nothing was done" and does not invite."""
    from bot import deferral

    command(queued_app, slack, "invite maria sms")
    monkeypatch.setattr(deferral, "since_received", lambda default=None: 9.0)  # picked late
    work(redis_conn)
    assert Invite.select().count() == 0
    assert "LedgerSync is busy: nothing was done" in json.dumps(answers(slack))

"""Seeing it work: `/metrics`, read with prometheus-client's own parser after a short
scenario through the real app (signed Slack requests, the Twilio and Plaid stand-ins,
the real Redis and RQ's worker), has data for every metric an operator watches; it is
served to the bearer of METRICS_TOKEN only. Under gunicorn, every worker's numbers
are added up, and the master serves them on METRICS_PORT too; a `ledgersync worker`
serves its own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

import wiring
from core.firms import access
from core.invitations import bulk_plan, bulk_sending, clients
from core.messaging import outbound
from core.platform import config
from core.records import Message
from jobs import queues
from jobs.worker import LedgerSyncWorker
from ops import metrics
from tests.conftest import unavailable
from tests.helpers import csrf
from tests.helpers import metric_samples as samples
from tests.helpers import metric_value as value
from tests.https_server import ROOT, free_port, procfile_web
from tests.plaid_standin import CLIENT_ID as PLAID_ID
from tests.plaid_standin import SECRET as PLAID_SECRET
from tests.slack_requests import SECRET, command
from tests.slack_standin import TEAM
from tests.twilio_standin import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER

TOKEN = "metrics-token-for-tests-0123"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
MARIA = "+12125550134"
LANDLINE = "+15005550009"  # the Twilio stand-in answers 21614: not a mobile number


def scrape(web) -> list:
    answer = web.get("/metrics", headers=BEARER)
    assert answer.status_code == 200, answer.text
    return samples(answer.text)


def work(redis) -> None:
    """Every queued job, run as `ledgersync worker` runs them, until none is left."""
    LedgerSyncWorker([queues.queue(n, redis) for n in queues.QUEUES],
                     connection=redis).work(burst=True, with_scheduler=False)


@pytest.fixture
def web(maria, firm, slack, twilio, plaid, redis_conn):
    """The app as production runs it — Slack, Twilio, Plaid, Redis — with metrics."""
    from web import create_app

    settings = config.settings().with_(
        slack_signing_secret=SECRET, slack_bot_token="xoxb-test", slack_api_url=slack.api_url,
        twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN,
        twilio_from_number=FROM_NUMBER, twilio_api_url=twilio.url, bank_provider="plaid",
        plaid_client_id=PLAID_ID, plaid_secret=PLAID_SECRET, plaid_api_url=plaid.url,
        quiet_hours=None, metrics_token=TOKEN)
    app = create_app(settings)
    outbound.reset_senders()
    assert access.connect(TEAM, "UANN", "ann@smith.example", "correct horse battery").ok
    yield app.test_client()
    wiring.inline()
    outbound.reset_senders()


def twilio_status(web, form: dict, token: str = AUTH_TOKEN):
    from twilio.request_validator import RequestValidator

    url = f"{config.settings().public_base_url}/sms/status"
    signature = RequestValidator(token).compute_signature(url, form)
    return web.post("/sms/status", data=form, headers={"X-Twilio-Signature": signature})


def test_every_metric_has_data_after_a_short_scenario(web, slack, firm, redis_conn):
    before = scrape(web)
    assert command(web, slack, "status maria").status_code == 200  # answered on a worker
    assert command(web, slack, "invite maria sms").status_code == 200  # …and texted
    assert command(web, slack, "status maria", secret="forged-secret").status_code == 401
    page = web.get("/account/sign-in")
    web.post("/account/sign-in", data={"csrf_token": csrf(page), "address": MARIA})
    code_page = web.get("/account/sign-in/code")
    wrong = web.post("/account/sign-in/code", data={"csrf_token": csrf(code_page),
                                                    "code": "000000"})
    assert wrong.status_code == 422
    clients.add(firm, "Lana Landline", phone=LANDLINE)
    bulk_sending.start(bulk_plan.prepare(firm, "list", names="Lana Landline").run.id)
    work(redis_conn)
    sid = Message.get(Message.kind == "invite", Message.to_addr == MARIA).provider_id
    receipt = {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "30003"}
    assert twilio_status(web, receipt).status_code == 204
    assert twilio_status(web, receipt, token="forged-token").status_code == 403
    assert web.post("/banks/plaid/webhook", data=b"{}", headers={
        "Content-Type": "application/json"}).status_code == 401
    queues.queue("default", redis_conn).enqueue("jobs.tasks.sweep")  # waits: no worker now
    after = scrape(web)

    def grew(name: str, **labels) -> bool:
        return value(after, name, **labels) > value(before, name, **labels)

    assert grew("ledgersync_http_requests_total", route="/slack/events", method="POST",
                status="200")
    assert grew("ledgersync_http_request_duration_seconds_count", route="/account/sign-in")
    assert grew("ledgersync_slack_ack_seconds_count", command="status")
    assert grew("ledgersync_slack_answer_seconds_count", command="status")
    assert grew("ledgersync_slack_answer_seconds_count", command="invite")
    assert grew("ledgersync_jobs_total", job="bot.deferral.answer_later", outcome="ok")
    assert grew("ledgersync_job_duration_seconds_count", job="jobs.tasks.deliver")
    assert grew("ledgersync_deliveries_total", channel="sms", provider="twilio",
                outcome="queued", error="none")
    assert grew("ledgersync_deliveries_total", channel="sms", provider="twilio",
                outcome="failed", error="landline")
    assert grew("ledgersync_delivery_receipts_total", provider="twilio", status="undelivered",
                error="unreachable")
    for source in ("slack", "twilio", "plaid"):
        assert grew("ledgersync_webhook_verification_failures_total", source=source)
    assert grew("ledgersync_bulk_items_total", channel="sms", result="failed")
    assert value(after, "ledgersync_send_rate_limit", channel="sms") == \
        config.settings().sms_rate
    assert grew("ledgersync_signin_codes_total", outcome="none")  # Maria never accepted
    assert grew("ledgersync_signin_refused_total", reason="wrong_code")
    assert value(after, "ledgersync_queue_depth", queue="default") == 1
    assert value(after, "ledgersync_queue_oldest_job_age_seconds", queue="default") > 0
    assert value(after, "ledgersync_redis_up") == 1


def test_metrics_are_only_for_the_bearer_of_the_token(sqlite_database):
    from web import create_app

    away = config.settings().with_(redis_url="redis://127.0.0.1:1/0")
    closed = create_app(away).test_client()
    opened = create_app(away.with_(metrics_token=TOKEN)).test_client()
    wiring.inline()
    assert closed.get("/metrics", headers=BEARER).status_code == 404  # no token: not served
    assert opened.get("/metrics").status_code == 401
    wrong = opened.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401 and TOKEN not in wrong.text
    answer = opened.get("/metrics", headers=BEARER)
    assert answer.status_code == 200
    assert value(samples(answer.text), "ledgersync_redis_up") == 0  # Redis away: said, not hung


def test_a_worker_serves_its_own_metrics_on_its_port(sqlite_database, redis_conn, caplog):
    settings = config.settings().with_(metrics_port=free_port())
    server = metrics.serve_port(settings)
    try:
        queues.queue("default", redis_conn).enqueue("jobs.tasks.sweep")
        work(redis_conn)
        url = f"http://127.0.0.1:{settings.metrics_port}/metrics"
        found = samples(urllib.request.urlopen(url, timeout=5).read().decode())
        assert value(found, "ledgersync_jobs_total", job="jobs.tasks.sweep", outcome="ok") >= 1
        assert metrics.serve_port(settings) is None  # taken: said, and the worker runs on
        assert "can't serve on" in caplog.text
    finally:
        server.shutdown()
        server.server_close()


# --- under gunicorn, as the Procfile runs it ------------------------------------------------


@pytest.mark.slow
def test_gunicorns_workers_add_up_and_the_master_serves_its_port(sqlite_database, redis_conn,
                                                                 tmp_path):
    port, metrics_port = free_port(), free_port()
    shared = tmp_path / "prom"
    shared.mkdir()
    (shared / "counter_999999.db").write_bytes(b"\0" * 64)  # a run before: emptied at start
    env = {**os.environ, "PORT": str(port), "WEB_CONCURRENCY": "2",
           "DATABASE_URL": config.settings().database_url,
           "REDIS_URL": config.settings().redis_url, "SECRET_KEY": config.settings().secret_key,
           "METRICS_TOKEN": TOKEN, "METRICS_PORT": str(metrics_port),
           "PROMETHEUS_MULTIPROC_DIR": str(shared), "LOG_FORMAT": "json",
           "SLACK_BOT_TOKEN": "", "TWILIO_ACCOUNT_SID": "", "SMTP_URL": ""}
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        web = subprocess.Popen(["bash", "-c", f"exec {procfile_web()}"], cwd=ROOT, env=env,
                               stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        assert _serving(f"{base}/healthz", web), log.read_text()
        ids = _until_both_workers_answered(f"{base}/healthz", shared)
        through_route = samples(_get(f"{base}/metrics", BEARER).read().decode())
        through_port = samples(_get(f"http://127.0.0.1:{metrics_port}/metrics").read().decode())
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=30)
    assert not (shared / "counter_999999.db").exists()
    for found in (through_route, through_port):  # both workers' requests, added up
        assert value(found, "ledgersync_http_requests_total", route="/healthz") == len(ids) + 1
    lines = [json.loads(line) for line in log.read_text().splitlines()]  # every one JSON
    accessed = " ".join(line["message"] for line in lines if line["logger"] == "gunicorn.access")
    assert all(f"request_id={rid}" in accessed for rid in ids)


def _until_both_workers_answered(url: str, shared, cap: int = 2000) -> list[str]:
    """Requests, 16 at a time, until both workers have answered some (each keeps its
    numbers in files named after its pid); the request ids of them all."""
    ids: list[str] = []
    with ThreadPoolExecutor(16) as pool:
        while len(ids) < cap and len({f.name.split("_")[-1] for f in shared.iterdir()}) < 2:
            ids += pool.map(lambda _: _get(url).headers["X-Request-ID"], range(32))
    return ids


def _get(url: str, headers: dict | None = None):
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5)


def _serving(url: str, process, cap: float = 60.0) -> bool:
    deadline = time.monotonic() + cap
    while time.monotonic() < deadline and process.poll() is None:
        try:
            _get(url)
            return True
        except OSError:
            time.sleep(0.2)
    return False


# --- the dashboard and the alerts -------------------------------------------------------------

DASHBOARD = ROOT / "deploy" / "grafana" / "ledgersync-connect.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"


def exported() -> set[str]:
    """Every series name a scrape of ours can carry."""
    from prometheus_client import REGISTRY

    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
    names = {f.name + suffix for f in REGISTRY.collect() if f.name.startswith("ledgersync_")
             for suffix in suffixes.get(f.type, ("",))}
    return names | {f"ledgersync_queue_{what}" for what, _ in metrics.QUEUE_FAMILIES} | {
        "ledgersync_redis_up", "ledgersync_send_rate_limit"}


def test_the_dashboard_and_the_alerts_use_only_what_we_export():
    import re

    import yaml

    panels = json.loads(DASHBOARD.read_text())["panels"]
    exprs = [t["expr"] for p in panels for t in p.get("targets", [])]
    rules = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    exprs += [rule["expr"] for rule in rules]
    used = {name for expr in exprs for name in re.findall(r"ledgersync_[a-z_]+", expr)}
    assert used and used <= exported(), used - exported()
    assert all(p.get("description") for p in panels if p["type"] != "row")  # what each means


def test_the_alerts_fire_when_they_should():
    """promtool's unit tests of the rules (deploy/prometheus/alerts_test.yml)."""
    import shutil

    if shutil.which("promtool") is None:
        unavailable("promtool is not installed (apt-get install prometheus)")
    ran = subprocess.run(["promtool", "test", "rules", str(ALERTS.with_name("alerts_test.yml"))],
                         capture_output=True, text=True)
    assert ran.returncode == 0, ran.stdout + ran.stderr

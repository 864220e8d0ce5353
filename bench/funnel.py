"""How fast is a firm's funnel with 50,000 invites?

Loads one firm with 40,000 clients and 50,000 invites sent over the last 30 days (a
quarter of the clients resent a new link after their first expired), each invite with
its text (1 in 20 failed; a day-3 reminder for a quarter) and the event log a real
firm would have (sent, opened, accepted, banks connected, refused bank logins: about
150,000 events), into PostgreSQL (and SQLite with `--sqlite`), then computes the funnel
N times — as `ledgersync funnel`, `/ledgersync funnel` and the API do — and prints
the median and the 95th percentile, the SQL statements one funnel takes, and the plan.

    python bench/funnel.py                   # PostgreSQL, 50,000 invites, 20 runs
    python bench/funnel.py --invites 200000 --runs 10 --sqlite
    python bench/funnel.py   (servers: bench/servers.py)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import servers  # noqa: E402
from core.platform import config, db  # noqa: E402
from core.records import Firm, Staff, migrations  # noqa: E402
from core.reports import funnel, journeys  # noqa: E402
from tests.helpers import statements_run  # noqa: E402

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SERIES = {
    "sqlite": "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {count})",
    "postgres": "WITH s(n) AS (SELECT generate_series(1, {count}))",
}


def load(kind: str, invites: int) -> int:
    clients = invites * 4 // 5  # the last fifth are new links for the first clients
    base = f"'{NOW.replace(tzinfo=None):%Y-%m-%d %H:%M:%S}'"
    shift = {"sqlite": "datetime({base}, (-({hours})) || ' hours')",
             "postgres": "(TIMESTAMP {base} - ({hours}) * INTERVAL '1 hour')"}[kind]

    def at(hours: str) -> str:  # NOW minus `hours` (SQL)
        return shift.format(base=base, hours=hours)

    def run(sql: str) -> None:
        db.database.execute_sql(sql.replace("%", "%%") if kind == "postgres" else sql)

    firm = Firm.create(name="Bench LLP", timezone="America/New_York",
                       created_at=NOW - timedelta(days=400)).id
    staff = [Staff.create(firm=firm, email=f"s{i}@bench.example", name=f"Staff {i}",
                          password_hash="x").id for i in (1, 2)]
    series = SERIES[kind]
    run(series.format(count=clients) + " INSERT INTO client (firm_id, name, name_key, phone, "
        f"email, banks, created_at, updated_at) SELECT {firm}, 'Client ' || n, 'client ' || n, "
        "'+1212' || (5550000 + n), 'c' || n || '@example.com', '[]', "
        f"{at('9000')}, {at('9000')} FROM s")
    # n <= clients: each client's first invite, 6..26 days ago; the rest: a new link for
    # client n - clients, 6 days after its first (which had expired unaccepted).
    hours = f"CASE WHEN n <= {clients} THEN 144 + (n % 480) ELSE (n - {clients}) % 480 END"
    won = f"(n <= {clients} AND n > {invites - clients}) OR n > {clients}"
    run(series.format(count=invites) + " INSERT INTO invite (firm_id, client_id, purpose, "
        "channel, token_digest, token_sealed, banks, sent_by_id, sent_at, expires_at, "
        "reminder_due_at, reminded_at, first_clicked_at, accepted_at, revoked_at, expired_at, "
        "delivery, delivery_error) "
        f"SELECT {firm}, CASE WHEN n <= {clients} THEN n ELSE n - {clients} END, 'connect', "
        "CASE WHEN n % 3 = 0 THEN 'email' ELSE 'sms' END, 'b-' || n, 'x', '[]', "
        f"CASE WHEN n % 5 = 0 THEN NULL WHEN n % 2 = 0 THEN {staff[0]} ELSE {staff[1]} END, "
        f"{at(hours)}, {at(hours + ' - 120')}, {at(hours + ' - 72')}, {at(hours + ' - 72')}, "
        f"CASE WHEN ({won}) AND n % 10 < 7 THEN {at(hours + ' - 1')} END, "
        f"CASE WHEN ({won}) AND n % 10 < 5 THEN {at(hours + ' - 2')} END, "
        f"CASE WHEN ({won}) AND n % 97 = 96 THEN {at(hours + ' - 3')} END, "
        f"CASE WHEN (NOT ({won}) OR n % 10 >= 5) AND {hours} >= 120 "
        f"THEN {at(hours + ' - 120')} END, "
        # what came of the text (below), as deliveries keeps it on the invite (ids are n)
        "CASE WHEN n % 20 = 19 THEN 'undelivered' ELSE 'delivered' END, "
        "CASE WHEN n % 20 = 19 THEN 'the number doesn''t exist' END FROM s")
    run("INSERT INTO message (firm_id, client_id, invite_id, direction, channel, kind, "
        "dedupe_key, to_addr, body, segments, encoding, status, error_message, attempts, "
        "created_at, updated_at) SELECT i.firm_id, i.client_id, i.id, 'out', i.channel, "
        "'invite', 'invite-' || i.id || '-invite', 'x', 'x', 1, 'GSM-7', "
        "CASE WHEN i.id % 20 = 19 THEN 'undelivered' ELSE 'delivered' END, "
        "CASE WHEN i.id % 20 = 19 THEN 'the number doesn''t exist' END, 1, i.sent_at, "
        "i.sent_at FROM invite i")
    run("INSERT INTO message (firm_id, client_id, invite_id, direction, channel, kind, "
        "dedupe_key, to_addr, body, segments, encoding, status, attempts, created_at, "
        "updated_at) SELECT i.firm_id, i.client_id, i.id, 'out', i.channel, 'auto_reminder', "
        "'invite-' || i.id || '-auto_reminder', 'x', 'x', 1, 'GSM-7', 'delivered', 1, "
        "i.reminder_due_at, i.reminder_due_at FROM invite i WHERE i.id % 4 = 0")
    events = [("invite.sent", "i.sent_at", "1 = 1"),
              ("invite.opened", "i.first_clicked_at", "i.first_clicked_at IS NOT NULL"),
              ("invite.accepted", "i.accepted_at", "i.accepted_at IS NOT NULL"),
              ("connection.connected", "i.accepted_at", "i.accepted_at IS NOT NULL AND "
                                                        "i.id % 10 < 4"),
              ("connection.login_failed", "i.accepted_at", "i.accepted_at IS NOT NULL AND "
                                                           "i.id % 10 = 4")]
    for kind_, when, which in events:
        run(f"INSERT INTO event (\"at\", firm_id, client_id, invite_id, actor, kind, detail) "
            f"SELECT {when}, i.firm_id, i.client_id, i.id, 'client', '{kind_}', "
            f"'{{\"bank\": \"Chase\", \"reason\": \"Chase refused the login\"}}' FROM invite i "
            f"WHERE {which}")
    run(f"INSERT INTO opt_out (address, opted_out, source, changed_at) SELECT phone, "
        f"{'true' if kind == 'postgres' else 1}, 'keyword', {at('1')} FROM client "
        "WHERE id % 50 = 0")
    run("ANALYZE")
    return firm


def timed(work, runs: int) -> tuple[float, float, float | None]:
    """Median and 95th percentile of the wall-clock time (ms), and the database server's
    own CPU time a run (ms; PostgreSQL on this machine only: its backend's /proc stat),
    which other work on a shared machine slows down less than the wall clock."""
    samples, before = [], _server_cpu()
    for _ in range(runs):
        start = time.perf_counter()
        work()
        samples.append((time.perf_counter() - start) * 1000)
    after = _server_cpu()
    samples.sort()
    cpu = (after - before) / runs * 1000 if before is not None and after is not None else None
    return statistics.median(samples), samples[min(len(samples) - 1,
                                                   round(0.95 * (len(samples) - 1)))], cpu


def _server_cpu() -> float | None:
    """Seconds of CPU the PostgreSQL backend serving us has used (None elsewhere)."""
    if db.is_sqlite():
        return None
    pid = db.database.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def statements(work) -> int:
    with statements_run() as seen:
        work()
    return len(seen)


def plan(kind: str, firm: Firm) -> str:
    when = funnel.period(now=NOW)
    sql, params = journeys.summary_query(firm.id, when.start, when.end, NOW, None,
                                         funnel.NAMES)
    prefix = "EXPLAIN QUERY PLAN " if kind == "sqlite" else "EXPLAIN (ANALYZE, COSTS OFF) "
    rows = db.database.execute_sql(prefix + sql, params).fetchall()
    return "\n".join("    " + str(r[-1]) for r in rows)


def bench(kind: str, url: str, invites: int, runs: int, show_plan: bool) -> None:
    config.use(config.Settings(database_url=url, secret_key="bench"))
    db.bind(url, pooler="")
    migrations.upgrade()
    start = time.perf_counter()
    with db.database.atomic():
        firm = Firm.get_by_id(load(kind, invites))
    loaded = time.perf_counter() - start
    counts = {t: db.database.execute_sql(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("invite", "message", "event")}
    print(f"\n{kind}: {counts['invite']:,} invites, {counts['message']:,} messages, "
          f"{counts['event']:,} events loaded in {loaded:.1f} s")
    for by in (None, "staff", "run"):
        seen = funnel.of(firm, by=by, now=NOW)
        median, p95, cpu = timed(lambda by=by: funnel.of(firm, by=by, now=NOW), runs)
        count = statements(lambda by=by: funnel.of(firm, by=by, now=NOW))
        server = f", the server's CPU {cpu:.0f} ms a run" if cpu is not None else ""
        print(f"  funnel{' by ' + by if by else ''}: {seen.stages.invited:,} clients, "
              f"{seen.stages.connected:,} connected; {runs} runs: median {median:.0f} ms, "
              f"p95 {p95:.0f} ms{server}; {count} SQL statements")
    yardstick = _yardstick()
    if yardstick:
        print(f"  yardstick: SELECT count(*) FROM generate_series(1, 5000000) takes "
              f"{yardstick:.0f} ms here")
    if show_plan:
        print(plan(kind, firm))
    db.database.close()


def _yardstick() -> float | None:
    """How fast this database server is, in one number to compare machines by."""
    if db.is_sqlite():
        return None
    start = time.perf_counter()
    db.database.execute_sql("SELECT count(*) FROM generate_series(1, 5000000)").fetchone()
    return (time.perf_counter() - start) * 1000



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invites", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--sqlite", action="store_true", help="SQLite too")
    parser.add_argument("--plan", action="store_true", help="print the query plan")
    args = parser.parse_args()
    bench("postgres", servers.postgres_url(), args.invites, args.runs, args.plan)
    if args.sqlite:
        with tempfile.TemporaryDirectory() as folder:
            bench("sqlite", f"sqlite:///{folder}/bench.db", args.invites, args.runs, args.plan)


if __name__ == "__main__":
    main()

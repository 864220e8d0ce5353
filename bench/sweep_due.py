"""How fast is the sweep's due-query with millions of invites?

Loads CLIENTS x 5 invites (by default 200,000 clients, so 1,000,000 invites: four
replaced or expired, then the latest one accepted for 90% of clients and open for
10%, of which 1,000 have a reminder due now) into SQLite and PostgreSQL, then times
the sweep's queries — reminders due, expiries due — and prints their query plans.

    python bench/sweep_due.py                          # both databases, 1,000,000 invites
    python bench/sweep_due.py --only postgres --clients 2000000   # 10,000,000 invites
    python bench/sweep_due.py --clients 2000 --repeats 2          # a quick check
    python bench/sweep_due.py   (servers: bench/servers.py)

The firm is written through its model, so a new column with a default never breaks
this script; the many rows go in as one INSERT … SELECT each.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import servers
from core.invitations import invites, reminders
from core.platform import config, db
from core.records import Firm, Invite, migrations

CLIENTS = 200_000
PER_CLIENT = 5
DUE = 1_000  # reminders due now (at most a tenth of the clients)
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

# One statement per table, in SQL both databases speak. `n` runs over the rows;
# timestamps are literal text so both store them the same way (UTC, naive).
SERIES = {
    "sqlite": "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {count})",
    "postgres": "WITH s(n) AS (SELECT generate_series(1, {count}))",
}


def ts(delta: timedelta) -> str:
    return f"'{(NOW + delta).replace(tzinfo=None):%Y-%m-%d %H:%M:%S}'"


def load(kind: str, clients: int = CLIENTS) -> None:
    def run(sql):
        if kind == "postgres":  # typed timestamp literals; psycopg's % escaping
            sql = re.sub(r"'(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)'", r"TIMESTAMP '\1'", sql)
            sql = sql.replace("%", "%%")
        return db.database.execute_sql(sql)

    firm = Firm.create(name="Bench LLP", timezone="America/New_York",
                       created_at=NOW - timedelta(days=400)).id
    due, open_every = min(DUE, clients // 10), 10
    series = SERIES[kind]
    run(series.format(count=clients) + " INSERT INTO client (firm_id, name, name_key, email, "
        f"banks, created_at, updated_at) SELECT {firm}, 'Client ' || n, 'client ' || n, "
        f"'c' || n || '@example.com', '[]', {ts(timedelta(days=-300))}, "
        f"{ts(timedelta(days=-300))} FROM s")
    old = timedelta(days=-30)
    # Invites 1..4 of each client: long closed (superseded or expired).
    run(series.format(count=clients * (PER_CLIENT - 1)) + " INSERT INTO invite (firm_id, "
        "client_id, purpose, channel, token_digest, token_sealed, banks, sent_at, expires_at, "
        f"reminder_due_at, reminded_at, superseded_at, expired_at) SELECT {firm}, "
        f"1 + (n - 1) % {clients}, 'connect', 'email', 'old-' || n, 'x', '[]', {ts(old)}, "
        f"{ts(old + timedelta(days=5))}, {ts(old + timedelta(days=3))}, "
        f"{ts(old + timedelta(days=3))}, CASE WHEN n % 2 = 0 THEN {ts(old + timedelta(days=1))} "
        f"END, CASE WHEN n % 2 = 1 THEN {ts(old + timedelta(days=5))} END FROM s")
    # The latest invite: accepted (90%), or open (10%); of the open, `due` are due now.
    soon = due * open_every
    run(series.format(count=clients) + " INSERT INTO invite (firm_id, client_id, purpose, "
        "channel, token_digest, token_sealed, banks, sent_at, expires_at, reminder_due_at, "
        f"reminded_at, accepted_at) SELECT {firm}, n, 'connect', 'email', 'new-' || n, 'x', "
        f"'[]', CASE WHEN n <= {soon} THEN {ts(timedelta(days=-3, hours=-1))} "
        f"ELSE {ts(timedelta(days=-1))} END, "
        f"CASE WHEN n <= {soon} THEN {ts(timedelta(days=2))} ELSE {ts(timedelta(days=4))} END, "
        f"CASE WHEN n <= {soon} THEN {ts(timedelta(hours=-1))} "
        f"ELSE {ts(timedelta(days=2))} END, NULL, "
        f"CASE WHEN n % {open_every} = 0 THEN NULL ELSE {ts(timedelta(hours=-2))} END FROM s")
    run("ANALYZE")


def timed(query, repeats: int) -> tuple[float, float, int]:
    samples, rows = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        rows = len(list(query()))
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), max(samples), rows


def plan(kind: str, query) -> str:
    sql, params = query().sql()
    prefix = "EXPLAIN QUERY PLAN " if kind == "sqlite" else "EXPLAIN ANALYZE "
    rows = db.database.execute_sql(prefix + sql, params).fetchall()
    return "\n".join("    " + " ".join(str(c) for c in (r[-1:] if kind == "sqlite" else r))
                     for r in rows)



def bench(kind: str, url: str, clients: int = CLIENTS, repeats: int = 20) -> None:
    config.use(config.Settings(database_url=url, secret_key="bench"))
    db.bind(url)
    migrations.upgrade()
    start = time.perf_counter()
    with db.database.atomic():
        load(kind, clients)
    loaded = time.perf_counter() - start
    total = db.database.execute_sql("SELECT count(*) FROM invite").fetchone()[0]
    print(f"\n{kind}: {total:,} invites loaded in {loaded:.1f} s")
    queries = {  # exactly what the sweep runs (core.invitations.sweep.due_ids)
        "reminders due (batch of 500)":
            lambda: reminders.due(NOW).select(Invite.id).limit(500).tuples(),
        "expiries due (batch of 500)":
            lambda: invites.expiry_due(NOW).select(Invite.id).limit(500).tuples(),
    }
    for name, query in queries.items():
        median, worst, rows = timed(query, repeats)
        print(f"  {name}: {rows} rows, median {median:.2f} ms, max {worst:.2f} ms")
        print(plan(kind, query))
    db.database.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument("--clients", type=int, default=CLIENTS,
                        help=f"clients, each with {PER_CLIENT} invites (default {CLIENTS:,})")
    parser.add_argument("--repeats", type=int, default=20, help="timings of each query")
    args = parser.parse_args()
    if args.only in (None, "sqlite"):
        with tempfile.TemporaryDirectory() as folder:
            bench("sqlite", f"sqlite:///{folder}/bench.db", args.clients, args.repeats)
    if args.only in (None, "postgres"):
        bench("postgres", servers.postgres_url(), args.clients, args.repeats)


if __name__ == "__main__":
    main()

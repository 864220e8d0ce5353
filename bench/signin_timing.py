"""How long asking for a sign-in code takes for a number a client has and for one
nobody has (`core.invitations.sign_in.ask`, in this process): the median of N asks each, known and
unknown interleaved, each for an address not asked for before (so no hourly limit
makes one side cheaper).

Two ways, on the same database and Redis:
- `queue` — as production runs it: the request writes the attempt and hands it to the
  job queue; a worker decides whether a code goes (no worker runs here).
- `in request` — the decision made in the request (no job queue for sign-in codes:
  what a process without Redis does, and what every process did before).

    python -m bench.signin_timing [--tries 50] [--postgres]
    (servers: bench/servers.py)

It prints the medians and their difference; it asserts nothing (speed is the
machine's). The bench database (SQLite in a temporary folder, or PostgreSQL's, dropped
and created again) and the Redis database are emptied first.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # `python bench/signin_timing.py`: this folder must not shadow `jobs`
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench import servers  # noqa: E402

WARM_UP = 5


def setup(database_url: str):
    """The database and the job queue, as the web app has them; a firm."""

    import wiring
    from core.firms import firms
    from core.platform import config, db
    from core.records import migrations

    settings = config.Settings(database_url=database_url, redis_url=servers.redis_url(),
                               secret_key="bench-secret-key-0123456789",
                               public_base_url="https://connect.example.com")
    wiring.wire(settings)
    db.bind(database_url)
    migrations.upgrade()
    return firms.create("Bench LLP", admin_email="b@bench.example", admin_password="x" * 12)


def clients_with_access(firm, count: int, first: int) -> list[str]:
    """`count` clients who accepted a link once: their numbers, as typed."""
    from core.invitations import clients, invites, links
    from core.platform import tokens

    numbers = []
    for i in range(first, first + count):
        number = f"(212) 555-{i:04d}"
        client = clients.add(firm, f"Client {i:04d}", phone=number)
        links.accept(tokens.unseal(invites.send(client, "sms").invite.token_sealed))
        numbers.append(number)
    return numbers


def medians(known: list[str], unknown: list[str]) -> tuple[float, float]:
    """Milliseconds: the median ask for a known and for an unknown number."""
    from core.invitations import sign_in

    took = {"known": [], "unknown": []}
    for n, pair in enumerate(zip(known, unknown, strict=True)):
        order = [("known", pair[0]), ("unknown", pair[1])]
        for side, number in order if n % 2 == 0 else reversed(order):
            start = time.perf_counter()
            sign_in.ask(number)
            took[side].append((time.perf_counter() - start) * 1000)
    return statistics.median(took["known"][WARM_UP:]), statistics.median(took["unknown"][WARM_UP:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tries", type=int, default=50)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL, not SQLite")
    args = parser.parse_args()

    from core import ports
    from jobs import signin as signin_jobs

    with tempfile.TemporaryDirectory() as folder:
        url = servers.postgres_url() if args.postgres else f"sqlite:///{folder}/bench.db"
        firm = setup(url)
        if not ports.current().queued:
            sys.exit("Redis does not answer: the queue is what is measured")
        each = args.tries + WARM_UP
        ways = (("queue", signin_jobs.request_code), ("in request", None))
        for n, (mode, way) in enumerate(ways):
            ports.install(ports.current().with_(sign_in_runner=way))
            known = clients_with_access(firm, each, first=n * each)
            unknown = [f"(646) 555-{i:04d}" for i in range(n * each, (n + 1) * each)]
            k, u = medians(known, unknown)
            print(f"{mode:>10}: known {k:6.2f} ms, unknown {u:6.2f} ms (median of "
                  f"{args.tries} each), difference {k - u:+.2f} ms")


if __name__ == "__main__":
    main()

"""The client's pages under load, beside a bare Flask page with the same HTML.

Starts gunicorn twice as the Procfile runs it (2 workers x 8 threads): our app, and a
bare Flask app (`bench/bare_pages.py`) whose pages render, through Jinja, the very
HTML ours gave — no database, no session, no headers. Then N connections at once
(closed loop: each sends its next request when the answer comes) ask for each page
for S seconds, on ours and on the bare app:

- `link`: a client's invite link, `GET /i/<token>` (opened before: nothing written);
- `account`: the signed-in client's account page, `GET /i/account`.

Prints requests/s, p50, p99 and max latency, errors, and ours/bare ratios.

Then the same pages in open loop, as clients arrive: at each of `--rates` a second, a
request is due every 1/rate s whether or not the ones before have been answered (each
on a new connection, as each client's phone opens its own), timed from when it was
due — so a server that falls behind is charged for the wait. A rate past a server's
capacity shows what its clients then see. Each request carries the stamp a proxy puts
on it as it passes it on (`X-Request-Start`), and ours runs as behind one (PROXY_HOPS=1,
PAGE_BUSY_AFTER=3s): a page that waited past 3 s is answered busy at once
(`web/busy.py`), counted apart from errors; the times include those answers.

    python -m bench.pages [--seconds 10] [--connections 50] [--rates 200,400,800]
                          [--postgres]
    python -m bench.pages --seconds 1 --connections 4 --rates 20   # a quick check

With `wrk` on the PATH it drives the load (Debian's package); without it, Python
threads do (much slower: for a quick check only).
"""

from __future__ import annotations

import argparse
import asyncio
import http.cookiejar
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from shutil import which

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import cpu, servers  # noqa: E402
from bench.servers import postgres_url  # noqa: E402
from bench.slack_ack import serve  # noqa: E402

SECRET = "bench-secret-key-0123456789abcdef"


def prepare(database_url: str) -> str:
    """A firm, a client and her invite; the link's token."""
    import wiring
    from core.firms import firms
    from core.invitations import clients, invites
    from core.platform import config, tokens
    from core.records import migrations

    wiring.start(config.Settings(database_url=database_url, secret_key=SECRET,
                                 public_base_url="http://connect.example.com"))
    migrations.upgrade()
    wiring.inline()
    firm = firms.create("Smith & Co", admin_email="ann@smith.example",
                        admin_password="correct horse 1")
    maria = clients.add(firm, "Maria Gonzalez", phone="(212) 555-0134", banks=["Chase"])
    return tokens.unseal(invites.send(maria, "sms").invite.token_sealed)


def signed_in_cookie(port: int, token: str) -> str:
    """Open the link, accept it: the session cookie of the signed-in client."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    base = f"http://127.0.0.1:{port}"
    page = opener.open(f"{base}/i/{token}").read().decode()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    data = urllib.parse.urlencode({"csrf_token": csrf}).encode()
    accept = urllib.request.Request(f"{base}/i/{token}/accept", data=data,
                                    headers={"Origin": "http://connect.example.com"})
    opener.open(accept).read()
    return "; ".join(f"{c.name}={c.value}" for c in jar)


def fetch(url: str, cookie: str = "") -> str:
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return reply.read().decode()


def load(url: str, seconds: float, connections: int, cookie: str = "") -> dict:
    return (_wrk if which("wrk") else _threads)(url, seconds, connections, cookie)


def _wrk(url, seconds, connections, cookie) -> dict:
    args = ["wrk", "-t2", f"-c{connections}", f"-d{max(seconds, 1):.0f}s", "--latency",
            "--timeout", "10s", url]
    if cookie:
        args[1:1] = ["-H", f"Cookie: {cookie}"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60).stdout
    if "Requests/sec" not in out:
        raise SystemExit(f"wrk gave no figures for {url}:\n{out}")

    def ms(text):
        found = re.match(r"([\d.]+)(us|ms|s)", text)
        if found is None:
            raise SystemExit(f"wrk's figure {text!r} unread:\n{out}")
        value, unit = found.groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                              r"timeout (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "requests": int(re.search(r"(\d+) requests in", out).group(1)),
            # (the distribution's lines: "66.50%" closes the thread stats' line)
            "p50": ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),
            "p99": ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),
            "max": ms(re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", out).group(1)),
            "errors": (int(errors.group(1)) if errors else 0)
            + (sum(map(int, socket_errors.groups())) if socket_errors else 0)}


def _threads(url, seconds, connections, cookie) -> dict:
    samples, errors, lock = [], [0], threading.Lock()
    deadline = time.perf_counter() + seconds

    def person(_):
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            try:
                fetch(url, cookie)
            except OSError:
                with lock:
                    errors[0] += 1
                continue
            with lock:
                samples.append((time.perf_counter() - start) * 1000)

    began = time.perf_counter()
    with ThreadPoolExecutor(connections) as pool:
        list(pool.map(person, range(connections)))
    return _figures(samples, time.perf_counter() - began, errors=errors[0])


def _figures(samples: list[float], seconds: float, **counts) -> dict:
    """Answers a second, p50, p99 and max (ms) of a Python-driven run."""
    cuts = (statistics.quantiles(samples, n=100, method="inclusive") if len(samples) > 1
            else (samples or [float("nan")]) * 99)
    return {"rps": len(samples) / seconds, "requests": len(samples), "p50": cuts[49],
            "p99": cuts[98], "max": max(samples, default=float("nan")), **counts}


def open_loop(url: str, rate: float, seconds: float, cookie: str = "") -> dict:
    """One request due every 1/rate s for `seconds`, each on its own connection, each
    timed from when it was due; an answer other than 2xx/3xx, a failed connection or no
    answer within 10 s is an error."""
    return asyncio.run(_open_loop(urllib.parse.urlsplit(url), rate, seconds, cookie))


async def _open_loop(parts, rate: float, seconds: float, cookie: str) -> dict:
    head = f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n"
    head += f"Cookie: {cookie}\r\n" if cookie else ""
    loop = asyncio.get_running_loop()
    samples, errors, busy = [], [0], [0]

    async def one(due: float) -> None:
        await asyncio.sleep(max(0.0, due - loop.time()))
        # stamped as the proxy would as it passes the request on (web/busy.py)
        request = f"{head}X-Request-Start: t={time.time():.3f}\r\n\r\n".encode()
        writer = None
        try:
            async with asyncio.timeout(10):
                reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
                writer.write(request)
                status = int((await reader.readline()).split()[1])
                await reader.read()  # to the end: the server closes
        except (OSError, TimeoutError, ValueError, IndexError):
            errors[0] += 1
            return
        finally:
            if writer is not None:
                writer.close()
        if status == 503:
            busy[0] += 1
        elif status >= 400:
            errors[0] += 1
        samples.append((loop.time() - due) * 1000)

    start = loop.time() + 0.05
    await asyncio.gather(*(one(start + n / rate) for n in range(max(1, int(rate * seconds)))))
    return _figures(samples, loop.time() - start, errors=errors[0], busy=busy[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rates", default="200,400,800",
                        help="open loop: requests a second, comma-separated")
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        database_url = postgres_url() if args.postgres else f"sqlite:///{folder}/bench.db"
        token = prepare(database_url)
        env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": SECRET,
               "PUBLIC_BASE_URL": "http://connect.example.com",
               "REDIS_URL": servers.redis_url(),
               "PROXY_HOPS": "1", "PAGE_BUSY_AFTER": "3s"}  # as behind its proxy
        ours, port = serve("web:create_app()", env)
        processes = [ours]
        try:
            cookie = signed_in_cookie(port, prepare_second_link(database_url, token, port))
            pages = {"link": (f"/i/{token}", ""), "account": ("/i/account", cookie)}
            files = []
            for name, (path, with_cookie) in pages.items():
                html = Path(folder) / f"{name}.html"
                html.write_text(fetch(f"http://127.0.0.1:{port}{path}", with_cookie))
                files.append(f"{name}={html}")
            bare, bare_port = serve("bench.bare_pages:app", {**env, "BENCH_PAGES": ",".join(files)})
            processes.append(bare)
            report(args, pages, port, bare_port, database_url,
                   {"ours": ours.pid, "bare": bare.pid})
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait()


def prepare_second_link(database_url: str, token: str, port: int) -> str:
    """A second client's link, accepted by the bench to sign in (the first one's link
    stays unused, as the link page is measured on it)."""
    from core.firms import firms
    from core.invitations import clients, invites
    from core.platform import tokens

    firm = firms.find("Smith & Co")
    ana = clients.add(firm, "Ana Ruiz", phone="(212) 555-0199")
    fetch(f"http://127.0.0.1:{port}/i/{token}")  # the first link: opened once, before
    return tokens.unseal(invites.send(ana, "sms").invite.token_sealed)


def report(args, pages: dict, port: int, bare_port: int, database_url: str,
           pids: dict) -> None:
    """Each page's figures, ours beside the bare app's, with the CPU a request took in
    each group of processes (`bench/cpu.py`; the load tool counts in `this process`)."""
    shared = {"Redis": cpu.redis(servers.redis_url()),
              **({"database": cpu.named("postgres")} if args.postgres else {})}
    tool = "wrk" if which("wrk") else "Python threads"
    print(f"{args.connections} connections, {args.seconds:.0f} s a row ({tool}); gunicorn "
          f"2 x 8; {'PostgreSQL' if args.postgres else 'SQLite'}")
    print(f"{'page':<8} {'app':<6} {'req/s':>8} {'p50':>7} {'p99':>7} {'max':>7} {'errors':>6}"
          "   (ms)")
    urls = {name: {"bare": (f"http://127.0.0.1:{bare_port}/page/{name}", ""),
                   "ours": (f"http://127.0.0.1:{port}{path}", cookie)}
            for name, (path, cookie) in pages.items()}
    for name, apps in urls.items():
        for url, with_cookie in apps.values():
            load(url, min(2.0, args.seconds), args.connections, with_cookie)  # warmed up
        _rows(name, apps, pids, shared,
              lambda url, cookie: load(url, args.seconds, args.connections, cookie))
    print(f"\nopen loop: a request due every 1/rate s, {args.seconds:.0f} s a row, each on a new "
          "connection, timed from when it was due")
    print(f"{'page':<8} {'app':<6} {'rate':>5} {'req/s':>7} {'p50':>7} {'p99':>7} {'max':>7} "
          f"{'errors':>6} {'busy':>6}   (ms)")
    for rate in (float(r) for r in args.rates.split(",") if r.strip()):
        for name, apps in urls.items():
            _rows(name, apps, pids, shared,
                  lambda url, cookie, rate=rate: open_loop(url, rate, args.seconds, cookie),
                  f"{rate:>5.0f} ")


def busy(row: dict) -> str:
    """The open loop's busy answers (web/busy.py: 503 at once, the request having waited
    past PAGE_BUSY_AFTER); none in closed loop, whose requests can't wait that long."""
    return f" {row['busy']:>6}" if "busy" in row else ""


def _rows(name: str, apps: dict, pids: dict, shared: dict, run, rate: str = "") -> None:
    """One page's run on each app (CPU metered), then ours/bare."""
    rows, lines = {}, {}
    for label, (url, cookie) in apps.items():
        with cpu.Meter({"web": cpu.tree(pids[label]), **shared}) as meter:
            rows[label] = run(url, cookie)
        lines[label] = meter.line(rows[label]["requests"])
    for label, r in rows.items():
        print(f"{name:<8} {label:<6} {rate}{r['rps']:>8.0f} {r['p50']:>7.1f} {r['p99']:>7.1f} "
              f"{r['max']:>7.1f} {r['errors']:>6}{busy(r)}   {lines[label]}")
    ours, bare = rows["ours"], rows["bare"]
    print(f"{name:<8} {'ratio':<6} {' ' * len(rate)}{ours['rps'] / bare['rps']:>8.2f} "
          f"{ours['p50'] / bare['p50']:>7.2f} {ours['p99'] / bare['p99']:>7.2f}")


if __name__ == "__main__":
    main()

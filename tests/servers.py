"""Throwaway servers for one test run, so that no two runs (nor a developer's own data)
ever share one: a Redis on a free port (plain, or over TLS with a certificate authority
and certificate made here), a PgBouncer in transaction pooling mode, and a uniquely
named PostgreSQL database. Each is started here and gone when the run ends.

`start_run()` (called by tests/conftest.py before any test) starts the run's Redis and
creates its database — unless TEST_REDIS_URL / TEST_POSTGRES_URL are given, which are
then used as they are — and exports both, so every process a test starts (workers,
gunicorn, `ledgersync`, scripts/try) uses them too. `end_run()` stops and drops them.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import datetime
import ipaddress
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import psycopg
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from psycopg import sql

# Where a run creates its database when TEST_POSTGRES_URL is not given.
DEFAULT_PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
DATABASE_PREFIX = "ledgersync_test"
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"

# What stopped the run's own servers from starting ({"redis": reason, "postgres": …}).
problems: dict[str, str] = {}


@dataclass
class _Run:
    pid: int = 0
    redis_url: str = ""  # the run's own (empty when TEST_REDIS_URL was given)
    database_url: str = ""  # the same for PostgreSQL
    servers: list = field(default_factory=list)  # every server started in this process


_run = _Run()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """In the child, before exec: the kernel sends SIGTERM when the test run dies, even
    by SIGKILL, so no server outlives it (Linux; elsewhere end_run alone stops it)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Server:
    """A server process started here, its folder, and the port it listens on."""

    argv: list[str]
    folder: Path
    port: int
    process: subprocess.Popen | None = None

    def start(self, **popen) -> Server:
        _run.servers.append(self)  # stopped at the end of the run, whatever happens
        log = (self.folder / "server.log").open("w")
        self.process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, **popen)
        log.close()
        self._wait_open()
        return self

    def _wait_open(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.argv[0]} stopped at once: {self.log()[-800:]}")
            with contextlib.suppress(OSError), \
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.argv[0]} did not open port {self.port}: {self.log()[-800:]}")

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.folder / "server.log").read_text(errors="replace")
        return ""

    def stop(self, how: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(how)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


# --- Redis ------------------------------------------------------------------------------


@dataclass
class Redis:
    """A Redis of this run's own: no persistence, stopped with the run."""

    url: str
    server: Server
    ca_file: Path | None = None  # the authority its TLS certificate is signed by

    def stop(self) -> None:
        self.server.stop()


def start_redis(tls: bool = False, attempts: int = 3) -> Redis:
    """A redis-server on a free port (another run may take the same port between our
    asking and its binding: then another port)."""
    for attempt in range(attempts):
        try:
            return _start_redis(tls)
        except RuntimeError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _start_redis(tls: bool) -> Redis:
    exe = shutil.which("redis-server") or "/usr/bin/redis-server"
    folder, port = Path(tempfile.mkdtemp(prefix="ledgersync-redis-")), free_port()
    argv = [exe, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--daemonize", "no", "--dir", str(folder)]
    url, ca = f"redis://127.0.0.1:{port}/0", None
    if tls:
        ca, cert, key = make_certificates(folder)
        argv += ["--port", "0", "--tls-port", str(port), "--tls-cert-file", str(cert),
                 "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca),
                 "--tls-auth-clients", "no"]
        # Verified as a managed Redis is: the certificate against the authority, the
        # address against the certificate (redis-py's defaults, spelled out).
        url = (f"rediss://127.0.0.1:{port}/0?ssl_cert_reqs=required"
               f"&ssl_check_hostname=true&ssl_ca_certs={quote(str(ca))}")
    else:
        argv += ["--port", str(port)]
    server = Server(argv, folder, port)
    try:
        server.start(preexec_fn=_die_with_parent)
    except RuntimeError:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return Redis(url, server, ca)


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A certificate authority of this run's own, and a server certificate it signed for
    127.0.0.1 and localhost, valid for two days: (ca.pem, server.pem, server.key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "LedgerSync test CA")])
    ca = (_certificate(ca_name, ca_name, ca_key.public_key(), now)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    cert = (_certificate(subject, ca_name, key.public_key(), now)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    paths[2].chmod(0o600)
    return paths


def _certificate(subject, issuer, public_key, now) -> x509.CertificateBuilder:
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2)))


# --- PostgreSQL: a database of the run's own, and PgBouncer in front of it ---------------


def create_database(server_url: str, prefix: str = DATABASE_PREFIX) -> str:
    """CREATE a uniquely named database on the server; its URL."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(f"{server_url}/postgres", autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return f"{server_url}/{name}"


def drop_database(url: str) -> None:
    """DROP it, ending whatever still holds a connection (a killed worker's, PgBouncer's)."""
    server, _, name = url.rpartition("/")
    with psycopg.connect(f"{server}/postgres", autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                     .format(sql.Identifier(name)))


PGBOUNCER_INI = """\
[databases]
* = host={host} port={port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen}
unix_socket_dir =
auth_type = trust
auth_file = {folder}/userlist.txt
pool_mode = transaction
default_pool_size = {pool_size}
min_pool_size = {min_pool_size}
server_round_robin = 1
admin_users = postgres
max_client_conn = 500
ignore_startup_parameters = extra_float_digits
"""


@dataclass
class PgBouncer:
    """PgBouncer (Debian's) in transaction pooling mode in front of one database: `url`
    reaches that database through it. Server connections are used in turn
    (server_round_robin), so one client's consecutive transactions land on different
    server connections: anything that relies on a session (a server-side prepared
    statement, SET, a session advisory lock, LISTEN) fails as in production, at once."""

    url: str
    server: Server = field(repr=False)

    def stop(self) -> None:
        self.server.stop()  # SIGTERM: PgBouncer's immediate shutdown


def start_pgbouncer(database_url: str, pool_size: int = 4) -> PgBouncer:
    target = urlsplit(database_url)
    folder, port = Path(tempfile.mkdtemp(prefix="ledgersync-pgbouncer-")), free_port()
    (folder / "pgbouncer.ini").write_text(PGBOUNCER_INI.format(
        host=target.hostname or "127.0.0.1", port=target.port or 5432, listen=port,
        folder=folder, pool_size=pool_size, min_pool_size=min(2, pool_size)))
    # With auth_type=trust a user must still be listed; the password is for the server.
    user, password = unquote(target.username or "postgres"), unquote(target.password or "")
    (folder / "userlist.txt").write_text(f'"{user}" "{password}"\n')
    argv = [shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"]
    if os.geteuid() == 0:
        argv += ["-u", "postgres"]  # it refuses to run as root
    server = Server([*argv, str(folder / "pgbouncer.ini")], folder, port)
    server.start()
    netloc = target.netloc.rsplit("@", 1)[0] + "@" if "@" in target.netloc else ""
    bouncer = PgBouncer(f"postgresql://{netloc}127.0.0.1:{port}{target.path}", server)
    fill_pool(bouncer.url, pool_size)
    return bouncer


def fill_pool(url: str, size: int) -> None:
    """Open `size` server connections now (as a busy service would have), so the pool
    has several from the first test on and hands them out in turn."""
    clients = [psycopg.connect(url, prepare_threshold=None) for _ in range(size)]
    for client in clients:
        client.execute("SELECT 1")  # each holds a server connection (a transaction)…
    for client in clients:
        client.commit()  # …given back to the pool, clean (closed mid-transaction: dropped)
        client.close()


def pgbouncer_installed() -> bool:
    return bool(shutil.which("pgbouncer") or Path("/usr/sbin/pgbouncer").exists())


# --- the run's own servers ----------------------------------------------------------------




def start_run() -> None:
    """Start this run's Redis and create its database, unless TEST_REDIS_URL /
    TEST_POSTGRES_URL say which to use; export both for every process a test starts."""
    _run.pid = os.getpid()
    atexit.register(end_run)
    if not os.environ.get("TEST_REDIS_URL"):
        try:
            _run.redis_url = os.environ["TEST_REDIS_URL"] = start_redis().url
        except (OSError, RuntimeError) as problem:
            problems["redis"] = f"could not start this run's Redis: {str(problem)[:300]}"
    if not os.environ.get("TEST_POSTGRES_URL"):
        server = os.environ.get("TEST_POSTGRES_SERVER") or DEFAULT_PG_SERVER
        try:
            _run.database_url = create_database(server)
            os.environ["TEST_POSTGRES_URL"] = _run.database_url
        except psycopg.Error as problem:
            where = f"{urlsplit(server).hostname}:{urlsplit(server).port or 5432}"
            problems["postgres"] = (f"PostgreSQL not available at {where}: "
                                    f"{str(problem).strip()[:200]}")


def end_run() -> None:
    """Stop every server the run started (its Redis, and any a test left running) and
    drop its database — once, from the process that made them."""
    if os.getpid() != _run.pid:
        return
    while _run.servers:
        _run.servers.pop().stop()
    url, _run.database_url = _run.database_url, ""
    if url:
        with contextlib.suppress(psycopg.Error):
            drop_database(url)


def own() -> tuple[str, str]:
    """The Redis and database this run started and made itself ("" for one given)."""
    return _run.redis_url, _run.database_url


def redis_url() -> str:
    """The run's Redis (or one that never answers, when it could not be started)."""
    return os.environ.get("TEST_REDIS_URL") or UNREACHABLE_REDIS


def postgres_url() -> str:
    return os.environ.get("TEST_POSTGRES_URL", "")

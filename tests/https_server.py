"""The web process as the Procfile starts it (gunicorn), serving https with a
self-signed certificate made here — the browser test's production-like server."""

from __future__ import annotations

import datetime
import ipaddress
import os
import shlex
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from core.platform.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def procfile_web() -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("the Procfile has no web process")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class GunicornTLS:
    """`with GunicornTLS(settings, folder[, env]) as server:` — server.base is https://…"""

    def __init__(self, settings: Settings, folder: Path, env: dict[str, str] | None = None):
        self.settings, self.folder = settings, folder
        self.env = env or {}  # more settings for the web process (a Twilio stand-in…)
        self.port = free_port()
        self.base = f"https://127.0.0.1:{self.port}"
        self.log_path = folder / "gunicorn.log"

    def __enter__(self) -> GunicornTLS:
        cert, key = self_signed(self.folder)
        command = f"{procfile_web()} --certfile {shlex.quote(str(cert))} " \
                  f"--keyfile {shlex.quote(str(key))}"
        env = {**os.environ, "PORT": str(self.port), "WEB_CONCURRENCY": "1",
               "DATABASE_URL": self.settings.database_url,
               "SECRET_KEY": self.settings.secret_key, "PUBLIC_BASE_URL": self.base,
               "REDIS_URL": "redis://127.0.0.1:1/0", "SLACK_BOT_TOKEN": "",
               "TWILIO_ACCOUNT_SID": "", "SMTP_URL": "", **self.env}
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=ROOT, env=env,
                                        stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        self._wait_until_serving()
        return self

    def _wait_until_serving(self, cap: float = 60.0) -> None:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        deadline = time.monotonic() + cap
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"gunicorn exited:\n{self.access_log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as raw, \
                        context.wrap_socket(raw, server_hostname="127.0.0.1"):
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"gunicorn did not serve within {cap:.0f} s:\n{self.access_log()}")

    def access_log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def __exit__(self, *exc) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._log.close()

"""Settings: the public configuration contract, read from the environment.

Every variable is documented in the README's settings table; `.env.example`
lists them with their defaults.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, field, replace
from datetime import time, timedelta
from pathlib import Path

from dotenv import load_dotenv

from .errors import ConfigError

_DURATION_PART = re.compile(r"(\d+)\s*([dhms])")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
# The embedded sandbox provider by the paths it has had (BANK_PROVIDER may still name one).
SANDBOX_PATHS = {"sandbox", "core.banks:SandboxProvider", "core.banking.banks:SandboxProvider"}


def parse_duration(text: str) -> timedelta:
    """Parse `5d`, `72h`, `90s`, `30m` or a sum such as `1d12h` into a timedelta."""
    cleaned = text.strip().lower().replace(" ", "")
    parts = _DURATION_PART.findall(cleaned)
    if not cleaned or "".join(n + u for n, u in parts) != cleaned:
        raise ConfigError(
            f"'{text}' is not a duration: use a number and d, h, m or s, like 5d or 90s"
        )
    seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)
    if seconds <= 0:
        raise ConfigError(f"'{text}' must be longer than zero")
    return timedelta(seconds=seconds)


def _optional_duration(text: str | None) -> timedelta | None:
    """A duration, or None for nothing (unset, empty, `off`)."""
    if (text or "").strip().lower() in {"", "off", "none", "no"}:
        return None
    return parse_duration(text)


@dataclass(frozen=True)
class QuietHours:
    """Local-time window in which automatic texts wait (start inclusive, end exclusive)."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> QuietHours | None:
        value = text.strip().lower()
        if value in {"", "off", "none", "no"}:
            return None
        match = re.fullmatch(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})", value)
        if not match:
            raise ConfigError(f"QUIET_HOURS '{text}' should look like 21:00-08:00, or off")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59 or (h1, m1) == (h2, m2):
            raise ConfigError(f"QUIET_HOURS '{text}' is not a valid window")
        return cls(time(h1, m1), time(h2, m2))

    def contains(self, local: time) -> bool:
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///instance/ledgersync.db"
    redis_url: str = "redis://localhost:6379/0"
    public_base_url: str = "http://localhost:5000"
    secret_key: str = ""
    secret_key_fallbacks: tuple[str, ...] = ()
    encryption_keys: tuple[str, ...] = ()
    invite_ttl: timedelta = timedelta(days=5)
    reminder_after: timedelta = timedelta(days=3)
    resend_cooldown: timedelta = timedelta(seconds=60)  # a second link on the same channel
    quiet_hours: QuietHours | None = field(
        default_factory=lambda: QuietHours(time(21, 0), time(8, 0))
    )
    slack_signing_secret: str = ""
    slack_bot_token: str = ""  # single-workspace mode (no SLACK_CLIENT_ID)
    slack_client_id: str = ""  # with the secret: installed by OAuth in each firm's workspace
    slack_client_secret: str = ""
    slack_api_url: str = "https://slack.com/api/"
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_from_number: str = ""
    twilio_messaging_service_sid: str = ""
    twilio_api_url: str = ""
    smtp_url: str = ""
    mail_from: str = "LedgerSync <no-reply@localhost>"
    support_email: str = "support@ledgersync.com"
    bank_provider: str = "sandbox"  # or `plaid`, or `module:Class`
    plaid_client_id: str = ""
    plaid_secret: str = ""
    plaid_env: str = "sandbox"  # sandbox | production
    plaid_api_url: str = ""  # another host for Plaid's API (a local stand-in)
    api_rate: int = 120  # read-API requests a minute, per token
    sms_rate: float = 1.0  # texts per second, across every worker
    email_rate: float = 10.0
    # How much wider than 1/rate the pace's slots are: the jitter between our senders
    # and the provider that still never packs a second (0.025 = 25 ms), paid in rate.
    pace_margin: float = 0.025
    proxy_hops: int = 0  # proxies in front of the web process whose X-Forwarded-* we believe
    # Slack: a command that changes something is answered "busy" at once when the answer
    # queue's oldest job has waited longer than this (the answer would come too late).
    busy_after: timedelta = timedelta(seconds=3)
    # The client's pages: a request that waited longer than this in front of the web
    # process (by the proxy's X-Request-Start, behind PROXY_HOPS) is answered "busy".
    # None (the default): the stamp is not read — the proxy must be one that sets it.
    page_busy_after: timedelta | None = None
    client_session_idle: timedelta = timedelta(hours=24)
    client_session_max: timedelta = timedelta(days=7)
    # A pooler between us and PostgreSQL: `transaction` (PgBouncer's transaction pooling:
    # no server-side prepared statements, no session state) or "" (none, or session mode).
    database_pooler: str = ""
    metrics_token: str = ""  # /metrics answers a bearer of it (else 404)
    metrics_port: int = 0  # or a port of its own, on METRICS_ADDR; 0: none
    metrics_addr: str = "127.0.0.1"
    sentry_dsn: str = ""  # error reports to Sentry (or anything that speaks its protocol)
    sentry_environment: str = "production"
    log_format: str = "text"  # text | json (one object a line)

    @property
    def sms_provider(self) -> str:
        """Who sends texts: `twilio` when its credentials are set, else the local `outbox`."""
        return "twilio" if self.twilio_account_sid and self.twilio_auth_token else "outbox"

    @property
    def email_provider(self) -> str:
        return "smtp" if self.smtp_url else "outbox"

    @property
    def slack_mode(self) -> str:
        """`oauth` (installed in each firm's workspace: SLACK_CLIENT_ID and SECRET),
        `single` (one workspace: SLACK_BOT_TOKEN), or `off`."""
        if self.slack_client_id and self.slack_client_secret:
            return "oauth"
        return "single" if self.slack_bot_token else "off"

    @property
    def notice_provider(self) -> str:
        """Where firm notices go: `slack` when Slack is set up, else the local `outbox`."""
        return "outbox" if self.slack_mode == "off" else "slack"

    def with_(self, **changes) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        get = env.get
        defaults = cls()
        secret = get("SECRET_KEY") or _instance_secret(Path("instance"))
        return cls(
            database_url=get("DATABASE_URL") or defaults.database_url,
            redis_url=get("REDIS_URL") or defaults.redis_url,
            public_base_url=(get("PUBLIC_BASE_URL") or defaults.public_base_url).rstrip("/"),
            secret_key=secret,
            secret_key_fallbacks=_csv(get("SECRET_KEY_FALLBACKS", "")),
            encryption_keys=_csv(get("ENCRYPTION_KEYS", "")),
            invite_ttl=parse_duration(get("INVITE_TTL") or "5d"),
            reminder_after=parse_duration(get("REMINDER_AFTER") or "3d"),
            resend_cooldown=parse_duration(get("RESEND_COOLDOWN") or "60s"),
            quiet_hours=QuietHours.parse(get("QUIET_HOURS", "21:00-08:00")),
            slack_signing_secret=get("SLACK_SIGNING_SECRET", ""),
            slack_bot_token=get("SLACK_BOT_TOKEN", ""),
            slack_client_id=get("SLACK_CLIENT_ID", ""),
            slack_client_secret=get("SLACK_CLIENT_SECRET", ""),
            slack_api_url=get("SLACK_API_URL") or defaults.slack_api_url,
            twilio_account_sid=get("TWILIO_ACCOUNT_SID", ""),
            twilio_auth_token=get("TWILIO_AUTH_TOKEN", ""),
            twilio_from_number=get("TWILIO_FROM_NUMBER", ""),
            twilio_messaging_service_sid=get("TWILIO_MESSAGING_SERVICE_SID", ""),
            twilio_api_url=get("TWILIO_API_URL", ""),
            smtp_url=get("SMTP_URL", ""),
            mail_from=get("MAIL_FROM") or defaults.mail_from,
            support_email=get("SUPPORT_EMAIL") or defaults.support_email,
            bank_provider=get("BANK_PROVIDER") or defaults.bank_provider,
            plaid_client_id=get("PLAID_CLIENT_ID", ""),
            plaid_secret=get("PLAID_SECRET", ""),
            plaid_env=(get("PLAID_ENV") or defaults.plaid_env).strip().lower(),
            plaid_api_url=get("PLAID_API_URL", ""),
            api_rate=_per_minute(get("API_RATE"), defaults.api_rate),
            sms_rate=_rate("SMS_RATE", get("SMS_RATE"), defaults.sms_rate),
            email_rate=_rate("EMAIL_RATE", get("EMAIL_RATE"), defaults.email_rate),
            pace_margin=_margin(get("PACE_MARGIN"), defaults.pace_margin),
            proxy_hops=_hops(get("PROXY_HOPS")),
            busy_after=parse_duration(get("BUSY_AFTER") or "3s"),
            page_busy_after=_optional_duration(get("PAGE_BUSY_AFTER")),
            client_session_idle=parse_duration(get("CLIENT_SESSION_IDLE") or "24h"),
            client_session_max=parse_duration(get("CLIENT_SESSION_MAX") or "7d"),
            database_pooler=(get("DATABASE_POOLER") or "").strip().lower(),
            metrics_token=get("METRICS_TOKEN", ""),
            metrics_port=_port("METRICS_PORT", get("METRICS_PORT")),
            metrics_addr=get("METRICS_ADDR") or defaults.metrics_addr,
            sentry_dsn=get("SENTRY_DSN", ""),
            sentry_environment=get("SENTRY_ENVIRONMENT") or defaults.sentry_environment,
            log_format=(get("LOG_FORMAT") or defaults.log_format).strip().lower(),
        ).validated()

    @property
    def bank_provider_name(self) -> str:
        """`sandbox`, `plaid`, or the `module:Class` given in BANK_PROVIDER."""
        value = self.bank_provider.strip()
        if value in SANDBOX_PATHS:
            return "sandbox"
        return value if ":" in value else value.lower()

    @property
    def plaid_webhook_url(self) -> str:
        return f"{self.public_base_url}/banks/plaid/webhook"

    def validated(self) -> Settings:
        if self.plaid_env not in {"sandbox", "production"}:
            raise ConfigError("PLAID_ENV is sandbox or production")
        if self.reminder_after >= self.invite_ttl:
            raise ConfigError("REMINDER_AFTER must be shorter than INVITE_TTL")
        if not self.public_base_url.startswith(("http://", "https://")):
            raise ConfigError("PUBLIC_BASE_URL must start with http:// or https://")
        if self.database_pooler not in {"", "transaction", "session"}:
            raise ConfigError("DATABASE_POOLER is transaction, session, or empty")
        if self.log_format not in {"text", "json"}:
            raise ConfigError("LOG_FORMAT is text or json")
        return self


def _rate(name: str, value: str | None, default: float) -> float:
    if not value:
        return default
    try:
        rate = float(value)
    except ValueError:
        raise ConfigError(f"{name} is a number of messages per second, like 1 or 0.5") from None
    if not 0 < rate <= 1000:
        raise ConfigError(f"{name} must be above 0 and at most 1000")
    return rate


def _port(name: str, value: str | None) -> int:
    text = (value or "").strip()
    if not text:
        return 0
    if not re.fullmatch(r"[0-9]{1,5}", text) or not 0 < int(text) < 65536:
        raise ConfigError(f"{name} is a port number, 1 to 65535")
    return int(text)


def _margin(value: str | None, default: float) -> float:
    if not value:
        return default
    text = value.strip()
    try:
        margin = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise ConfigError("PACE_MARGIN is a share of the rate, like 2% or 0.02") from None
    if not 0.01 <= margin <= 0.5:
        raise ConfigError("PACE_MARGIN must be from 1% to 50%")
    return margin


def _per_minute(value: str | None, default: int) -> int:
    if not value:
        return default
    if not (value.strip().isascii() and value.strip().isdigit()) or not 0 < int(value) <= 100_000:
        raise ConfigError("API_RATE is requests a minute per token, a whole number like 120")
    return int(value)


def _hops(value: str | None) -> int:
    if not value:
        return 0
    if not (value.strip().isascii() and value.strip().isdigit()) or int(value) > 5:
        raise ConfigError("PROXY_HOPS is how many proxies are in front of the web process: "
                          "0 (none), 1 (one load balancer)… at most 5")
    return int(value)


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _instance_secret(folder: Path) -> str:
    """Development only: a random SECRET_KEY kept in instance/ so links survive restarts."""
    path = folder / "secret_key"
    if path.exists():
        return path.read_text().strip()
    folder.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    path.write_text(key)
    path.chmod(0o600)
    return key


_current: Settings | None = None


def settings() -> Settings:
    """The process-wide settings, read from the environment (and a `.env` file in
    the working directory, which never overrides the environment) on first use."""
    global _current
    if _current is None:
        load_dotenv(".env", override=False)  # this directory's, not the code's
        _current = Settings.from_env()
    return _current


def in_use() -> Settings | None:
    """The settings in force if they have been read or given already; None before (read
    nothing, make nothing: a development secret key is made on first read)."""
    return _current


def use(new: Settings) -> Settings:
    """Replace the process-wide settings (start-up code and tests)."""
    global _current
    _current = new
    return new

# Shared by scripts/try and scripts/test: set up what the project needs on this
# machine. Sourced, not run.

# The repository (where .venv is), wherever the sourcing script has gone since.
LEDGERSYNC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

say() { printf '\033[1m%s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}

apt_install() {
  command -v apt-get >/dev/null || return 1
  say "Installing $* from the system's packages…"
  as_root apt-get update -qq >/dev/null && as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq "$@" >/dev/null
}

ensure_python() {
  PYTHON=${PYTHON:-python3}
  if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    say "LedgerSync Connect needs Python 3.11 or newer (found: $("$PYTHON" --version 2>&1))."
    exit 1
  fi
  if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
    apt_install python3-venv || { say "Install Python's venv module (python3-venv)."; exit 1; }
  fi
}

# quietly CMD…: run CMD, showing its output only when it fails.
quietly() {
  local log
  log=$(mktemp)
  if ! "$@" >"$log" 2>&1; then grep -v '^WARNING: Location' "$log" >&2; rm -f "$log"; return 1; fi
  rm -f "$log"
}

# ensure_venv [extra]: .venv with the project installed (editable), e.g. "test".
ensure_venv() {
  ensure_python
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  local spec="."
  [ -n "${1:-}" ] && spec=".[$1]"
  local stamp=".venv/.installed-${1:-base}"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    say "Installing LedgerSync Connect and its dependencies into .venv…"
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
    quietly .venv/bin/python -m pip install -q -e "$spec"
    touch "$stamp"
  fi
  # shellcheck disable=SC1091
  . .venv/bin/activate
}

redis_up() { "$LEDGERSYNC_ROOT/.venv/bin/python" - "$1" <<'PY' 2>/dev/null
import sys, redis
redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1).ping()
PY
}

# redis_where URL: "host port password" of a redis:// URL (defaults 127.0.0.1, 6379).
redis_where() { "$LEDGERSYNC_ROOT/.venv/bin/python" - "$1" <<'PY'
import sys
from urllib.parse import unquote, urlsplit
url = urlsplit(sys.argv[1])
print(url.hostname or "127.0.0.1", url.port or 6379, unquote(url.password or "") or "-")
PY
}

# ensure_redis_installed: redis-server on this machine (the tests start their own).
ensure_redis_installed() {
  command -v redis-server >/dev/null || apt_install redis-server
}

# ensure_redis URL: a Redis answering at URL — started here when it names this
# machine (localhost, 127.x, ::1) on the URL's own port, installed when missing.
ensure_redis() {
  local url=${1:-redis://127.0.0.1:6379/0} host port password
  redis_up "$url" && return 0
  read -r host port password < <(redis_where "$url") || return 1
  case "$host" in
    localhost|127.*|::1) ;;
    *) say "Redis at $host:$port is not answering (not this machine: start it there)."
       return 1 ;;
  esac
  ensure_redis_installed || return 1
  local bind=127.0.0.1
  [ "$host" = "::1" ] && bind=::1
  local auth=()
  [ "$password" != "-" ] && auth=(--requirepass "$password")
  say "Starting Redis on $host:$port…"
  redis-server --daemonize yes --bind "$bind" --port "$port" --save "" --appendonly no \
    --dir /tmp --pidfile "/tmp/ledgersync-redis-$port.pid" ${auth[@]+"${auth[@]}"} >/dev/null
  for _ in 1 2 3 4 5 6 7 8 9 10; do redis_up "$url" && return 0; sleep 0.5; done
  return 1
}

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

# ensure_postgres: a PostgreSQL on 127.0.0.1:5432 the tests can use, each run in a
# database of its own; when it asks for a password, TEST_POSTGRES_SERVER says it.
ensure_postgres() {
  if ! pg_up; then
    command -v pg_ctlcluster >/dev/null || apt_install postgresql || return 1
    local version
    version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1)
    [ -n "$version" ] || return 1
    say "Starting PostgreSQL $version…"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || return 1
    for _ in 1 2 3 4 5 6 7 8 9 10; do pg_up && break; sleep 1; done
  fi
  [ -n "${TEST_POSTGRES_URL:-}${TEST_POSTGRES_SERVER:-}" ] && return 0
  psql -h 127.0.0.1 -U postgres -d postgres -tAc 'select 1' >/dev/null 2>&1 && return 0
  # A fresh install asks for a password over TCP: give the test user one.
  as_root su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'ledgersync-test'\"" \
    >/dev/null 2>&1 || return 1
  export TEST_POSTGRES_SERVER=postgresql://postgres:ledgersync-test@127.0.0.1:5432
}

# ensure_pgbouncer: Debian's PgBouncer, which the tests start in front of PostgreSQL.
ensure_pgbouncer() {
  command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || apt_install pgbouncer
}

# ensure_promtool: Prometheus's promtool, which unit-tests the alert rules (deploy/prometheus).
ensure_promtool() {
  command -v promtool >/dev/null || apt_install prometheus
}

# ensure_chromium: Debian's Chromium for the browser test.
ensure_chromium() {
  command -v chromium >/dev/null || command -v chromium-browser >/dev/null || apt_install chromium
}

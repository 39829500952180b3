#!/usr/bin/env bash
# Start a throw-away PostgreSQL server on loopback for `meltano run tap-segments target-postgres`
# and print the environment the target needs:
#
#   eval "$(scripts/start_postgres.sh)"        # start (or reuse) it, export TARGET_POSTGRES_*
#   scripts/start_postgres.sh stop              # stop it (the data directory is kept)
#   scripts/start_postgres.sh destroy           # stop it and delete its data directory
#
# Idempotent: installs the Debian `postgresql` package only if no server binaries are found,
# creates its own cluster (not the distribution's `main` one) in $PG_DATA_DIR, reuses it
# when it is already running, and creates the role and database only when missing.
# Runs the server as the `postgres` user when invoked as root (PostgreSQL refuses root).
# Only the `export` lines go to stdout; progress goes to stderr.
#
# Settings (environment): PG_DATA_DIR (default /tmp/tap-segments-postgres), PG_PORT (default
# 5432, or a free port when 5432 is taken by another server), PG_USER / PG_PASSWORD /
# PG_DATABASE (default tap_segments / tap_segments / tap_segments).
set -euo pipefail

DATA_DIR=${PG_DATA_DIR:-/tmp/tap-segments-postgres}
PORT=${PG_PORT:-5432}
DB_USER=${PG_USER:-tap_segments}
DB_PASSWORD=${PG_PASSWORD:-tap_segments}
DB_NAME=${PG_DATABASE:-tap_segments}
CLUSTER="$DATA_DIR/data"
SOCKET_DIR="$DATA_DIR/socket"
LOG_FILE="$DATA_DIR/server.log"

log() { echo "start_postgres: $*" >&2; }

find_bindir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$dir" ] && [ -x "$dir/pg_ctl" ]; then
    echo "$dir"
  elif command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v pg_ctl)"
  fi
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root (or sudo) to run: $*"
    exit 1
  fi
}

# Run a command as the server's owner: `postgres` when we are root, else ourselves.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

BINDIR=$(find_bindir)
if [ -z "$BINDIR" ]; then
  log "installing the Debian postgresql package"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq >&2
  as_root apt-get install -y -qq postgresql >&2
  BINDIR=$(find_bindir)
fi
[ -n "$BINDIR" ] || { log "no PostgreSQL server binaries found"; exit 1; }
PG_CTL="$BINDIR/pg_ctl"

is_running() { [ -f "$CLUSTER/PG_VERSION" ] && as_owner "$PG_CTL" -D "$CLUSTER" status >/dev/null 2>&1; }

case "${1:-start}" in
  stop | destroy)
    if is_running; then
      as_owner "$PG_CTL" -D "$CLUSTER" -m fast -w stop >&2
    fi
    if [ "${1}" = destroy ]; then rm -rf "$DATA_DIR"; fi
    log "stopped"
    exit 0
    ;;
  start) ;;
  *)
    echo "usage: $0 [start|stop|destroy]" >&2
    exit 2
    ;;
esac

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

if is_running; then
  PORT=$(sed -n 4p "$CLUSTER/postmaster.pid")
  log "reusing the server already running on 127.0.0.1:$PORT ($CLUSTER)"
else
  if [ ! -f "$CLUSTER/PG_VERSION" ]; then
    log "creating a cluster in $CLUSTER"
    rm -rf "$CLUSTER"
    mkdir -p "$CLUSTER" "$SOCKET_DIR"
    [ "$(id -u)" -ne 0 ] || chown -R postgres:postgres "$DATA_DIR"
    # Superuser over the private socket only; TCP (loopback) always needs a password.
    as_owner "$BINDIR/initdb" -D "$CLUSTER" -U postgres -E UTF8 --locale=C.UTF-8 \
      --auth-local=trust --auth-host=scram-sha-256 >"$DATA_DIR/initdb.log" 2>&1 \
      || { cat "$DATA_DIR/initdb.log" >&2; exit 1; }
  fi
  if port_in_use "$PORT"; then
    PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    log "port ${PG_PORT:-5432} is taken by another server; using $PORT"
  fi
  # fsync=off: a throw-away server for CI and demos, not for data you keep.
  log "starting PostgreSQL ($("$BINDIR/postgres" --version)) on 127.0.0.1:$PORT"
  as_owner "$PG_CTL" -D "$CLUSTER" -l "$LOG_FILE" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $SOCKET_DIR -c fsync=off" >&2 \
    || { tail -n 20 "$LOG_FILE" >&2; exit 1; }
fi

psql_super() {
  as_owner "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCKET_DIR" -p "$PORT" -U postgres "$@"
}

# Role and database, created only when missing; the password is (re)set every time.
psql_super -d postgres -v user="$DB_USER" -v password="$DB_PASSWORD" >&2 <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'user')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user') \gexec
ALTER ROLE :"user" WITH LOGIN PASSWORD :'password';
SQL
psql_super -d postgres -v db="$DB_NAME" -v user="$DB_USER" >&2 <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'user')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
log "ready: postgresql://$DB_USER:***@127.0.0.1:$PORT/$DB_NAME"

emit() { printf 'export %s=%q\n' "$1" "$2"; }
emit TARGET_POSTGRES_HOST 127.0.0.1
emit TARGET_POSTGRES_PORT "$PORT"
emit TARGET_POSTGRES_USER "$DB_USER"
emit TARGET_POSTGRES_PASSWORD "$DB_PASSWORD"
emit TARGET_POSTGRES_DATABASE "$DB_NAME"
# For psql and scripts/warehouse_counts.py.
emit PGHOST 127.0.0.1
emit PGPORT "$PORT"
emit PGUSER "$DB_USER"
emit PGPASSWORD "$DB_PASSWORD"
emit PGDATABASE "$DB_NAME"
emit POSTGRES_DSN "host=127.0.0.1 port=$PORT user=$DB_USER password=$DB_PASSWORD dbname=$DB_NAME"

#!/usr/bin/env bash
# End to end into a real PostgreSQL: start a throwaway server on 127.0.0.1, run
# `meltano run tap-segments target-postgres` against the vendor simulator, check every
# table's row count with SQL against the simulator's truth; then run again with the state
# meltano saved and check that nothing was duplicated. Installs Debian's `postgresql` when
# the server binaries are missing (needs root, as in CI).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh
. scripts/_simulator.sh

ensure_dev_venv
ensure_meltano_venv
export MELTANO_SEND_ANONYMOUS_USAGE_STATS=false MELTANO_DISABLE_TRACKING=true
MELTANO=.venv-meltano/bin/meltano

if ! ls /usr/lib/postgresql/*/bin/pg_ctl > /dev/null 2>&1; then
  echo "==> installing PostgreSQL (Debian package postgresql)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq postgresql > /dev/null
fi
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
PGDATA=$(mktemp -d /tmp/tap-segments-pg.XXXXXX)
PGPORT=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# PostgreSQL refuses to run as root: run it as the `postgres` user when we are root.
as_pg() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$PGDATA"

echo "==> starting PostgreSQL ($PG_BIN) on 127.0.0.1:$PGPORT"
as_pg "'$PG_BIN/initdb' -D '$PGDATA' -U postgres -A scram-sha-256 --pwfile=<(echo postgres-pass)" > /dev/null
as_pg "'$PG_BIN/pg_ctl' -D '$PGDATA' -l '$PGDATA/server.log' -w -o \"-c listen_addresses=127.0.0.1 -p $PGPORT -k '$PGDATA'\" start" > /dev/null
cleanup() {
  stop_simulator
  as_pg "'$PG_BIN/pg_ctl' -D '$PGDATA' -m fast -w stop" > /dev/null 2>&1 || true
  rm -rf "$PGDATA"
}
trap cleanup EXIT
PGPASSWORD=postgres-pass psql -q -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres \
  -c "create role loader login password 'loader-pass'" -c "create database warehouse owner loader"

export TARGET_POSTGRES_HOST=127.0.0.1 TARGET_POSTGRES_PORT=$PGPORT TARGET_POSTGRES_USER=loader
export TARGET_POSTGRES_PASSWORD=loader-pass TARGET_POSTGRES_DATABASE=warehouse
DSN="postgresql://loader:loader-pass@127.0.0.1:$PGPORT/warehouse"

echo "==> meltano install target-postgres"
$MELTANO --log-level=warning install tap-segments target-postgres

start_simulator --scale demo
trap cleanup EXIT
export TAP_SEGMENTS_EXPORT_POLL_INTERVAL_SECONDS=1
STATE_ID=postgres-e2e-$$

echo "==> run 1: meltano run tap-segments target-postgres (full)"
$MELTANO run --state-id-suffix "$STATE_ID" --full-refresh tap-segments target-postgres
.venv/bin/python scripts/warehouse_counts.py postgres "$DSN" segments "$SIMULATOR_URL"

echo "==> run 2: the same, with the state run 1 saved (incremental: nothing may duplicate)"
$MELTANO run --state-id-suffix "$STATE_ID" tap-segments target-postgres
.venv/bin/python scripts/warehouse_counts.py postgres "$DSN" segments "$SIMULATOR_URL" --rerun

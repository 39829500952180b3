#!/usr/bin/env bash
# End to end into a real PostgreSQL: start a throwaway server on 127.0.0.1, then against the
# vendor simulator (scale demo):
#   1. `meltano run tap-segments target-postgres` with BATCH messages (jsonl.gz files) into
#      schema segments_batch: every table's row count checked with SQL against the simulator;
#      then, on a fresh simulator, with BATCH messages in the parquet encoding into schema
#      segments_parquet: counts checked, the parquet files read back with pyarrow against the
#      simulator's rows (scripts/parquet_checks.py), every row equal to the jsonl.gz load's;
#   2. on a fresh simulator (same seed, so the same data), the same with RECORD messages into
#      schema segments: counts checked, and every row equal to the BATCH load's;
#   3. again with the state meltano saved from 2 (incremental): counts unchanged except what
#      the vendor rightly added, no row of an incremental export written again, and no
#      export triggered or result file read again at the vendor.
# Installs Debian's `postgresql` when the server binaries are missing (needs root, as in CI).
# Stops the server and the simulator, and deletes their files, on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh
. scripts/_simulator.sh

started=$(date +%s)
step() { echo "==> [$(($(date +%s) - started)) s] $*"; }

ensure_dev_venv
ensure_meltano_venv
export MELTANO_SEND_ANONYMOUS_USAGE_STATS=false MELTANO_DISABLE_TRACKING=true
MELTANO=.venv-meltano/bin/meltano

if ! ls /usr/lib/postgresql/*/bin/pg_ctl > /dev/null 2>&1; then
  step "installing PostgreSQL (Debian package postgresql)"
  if [ "$(id -u)" != 0 ]; then
    echo "error: PostgreSQL server binaries are missing; install the postgresql package" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql > /dev/null
fi
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
WORK=$(mktemp -d /tmp/tap-segments-pg.XXXXXX)
PGDATA="$WORK/data"
BATCHES="$WORK/batches"
PARQUET="$WORK/parquet"
PGPORT=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# PostgreSQL refuses to run as root: run it as the `postgres` user when we are root.
as_pg() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi; }
mkdir -p "$PGDATA" "$BATCHES" "$PARQUET"
chmod 755 "$WORK"  # the server user must reach its data directory inside
[ "$(id -u)" != 0 ] || chown postgres "$PGDATA"

cleanup() {
  stop_simulator
  as_pg "'$PG_BIN/pg_ctl' -D '$PGDATA' -m fast -w stop" > /dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

step "starting PostgreSQL ($("$PG_BIN/postgres" --version)) on 127.0.0.1:$PGPORT"
as_pg "'$PG_BIN/initdb' -D '$PGDATA' -U postgres -A scram-sha-256 --pwfile=<(echo postgres-pass)" > /dev/null
# fsync off: a throwaway server, thrown away on exit.
as_pg "'$PG_BIN/pg_ctl' -D '$PGDATA' -l '$PGDATA/server.log' -w -o \"-c listen_addresses=127.0.0.1 -p $PGPORT -k '$PGDATA' -c fsync=off\" start" > /dev/null
PGPASSWORD=postgres-pass "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" \
  -U postgres -d postgres \
  -c "create role loader login password 'loader-pass'" -c "create database warehouse owner loader"

# The loader's settings, through the environment as meltano reads them.
export TARGET_POSTGRES_HOST=127.0.0.1 TARGET_POSTGRES_PORT=$PGPORT TARGET_POSTGRES_USER=loader
export TARGET_POSTGRES_PASSWORD=loader-pass TARGET_POSTGRES_DATABASE=warehouse
DSN="postgresql://loader:loader-pass@127.0.0.1:$PGPORT/warehouse"
STATE_ID=postgres-e2e-$$
COUNTS=(.venv/bin/python scripts/warehouse_counts.py postgres "$DSN")
CHECKS=(.venv/bin/python scripts/postgres_checks.py)

step "meltano install tap-segments target-postgres"
$MELTANO --log-level=warning install tap-segments target-postgres

export TAP_SEGMENTS_EXPORT_POLL_INTERVAL_SECONDS=1
start_simulator --scale demo
trap cleanup EXIT

step "run 1: BATCH messages (jsonl + gzip files in $BATCHES) into schema segments_batch"
# batch_config through its leaves: meltano.yml declares them one by one, and then meltano
# ignores TAP_SEGMENTS_BATCH_CONFIG as a whole (the run would quietly send RECORDs).
TAP_SEGMENTS_BATCH_CONFIG_ENCODING_FORMAT=jsonl TAP_SEGMENTS_BATCH_CONFIG_ENCODING_COMPRESSION=gzip \
  TAP_SEGMENTS_BATCH_CONFIG_STORAGE_ROOT="file://$BATCHES" \
  TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA=segments_batch \
  $MELTANO run --state-id-suffix "$STATE_ID-batch" --full-refresh tap-segments target-postgres
written=$(find "$BATCHES" -name '*.json.gz' | wc -l)
echo "BATCH files written: $written"
[ "$written" -gt 0 ] || { echo "no BATCH file was written: the run sent RECORDs" >&2; exit 1; }
"${COUNTS[@]}" segments_batch "$SIMULATOR_URL"
"${CHECKS[@]}" storage "$SIMULATOR_URL"

# A fresh simulator with the same seed serves the same data, so each run sees what run 1 saw.
stop_simulator
start_simulator --scale demo
trap cleanup EXIT

step "run 1b: BATCH messages (parquet files in $PARQUET) into schema segments_parquet"
TAP_SEGMENTS_BATCH_CONFIG_ENCODING_FORMAT=parquet TAP_SEGMENTS_BATCH_CONFIG_BATCH_SIZE=1500 \
  TAP_SEGMENTS_BATCH_CONFIG_STORAGE_ROOT="file://$PARQUET" \
  TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA=segments_parquet \
  $MELTANO run --state-id-suffix "$STATE_ID-parquet" --full-refresh tap-segments target-postgres
written=$(find "$PARQUET" -name '*.parquet' | wc -l)
echo "parquet BATCH files written: $written"
[ "$written" -gt 0 ] || { echo "no parquet file was written: the run sent RECORDs" >&2; exit 1; }
"${COUNTS[@]}" segments_parquet "$SIMULATOR_URL"
.venv/bin/python scripts/parquet_checks.py "$PARQUET" --seed 1 --scale demo
"${CHECKS[@]}" same "$DSN" segments_parquet segments_batch

stop_simulator
start_simulator --scale demo
trap cleanup EXIT

step "run 2: RECORD messages into schema segments (full)"
$MELTANO run --state-id-suffix "$STATE_ID" --full-refresh tap-segments target-postgres
"${COUNTS[@]}" segments "$SIMULATOR_URL"
"${CHECKS[@]}" storage "$SIMULATOR_URL"
"${CHECKS[@]}" same "$DSN" segments segments_batch
MARK=$("${CHECKS[@]}" mark "$DSN" segments)

step "run 3: the same with the state run 2 saved (incremental: nothing may duplicate)"
"${CHECKS[@]}" reset-log "$SIMULATOR_URL"
$MELTANO run --state-id-suffix "$STATE_ID" tap-segments target-postgres
"${COUNTS[@]}" segments "$SIMULATOR_URL" --rerun
"${CHECKS[@]}" rerun "$DSN" segments "$SIMULATOR_URL" "$MARK"

step "PostgreSQL end to end passed"

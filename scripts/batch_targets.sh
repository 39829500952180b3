#!/usr/bin/env bash
# Which targets take the tap's BATCH messages, measured: one sync of the bundled simulator
# with `batch_config` (jsonl + gzip files in output/batch/) into each of target-jsonl,
# target-duckdb and target-postgres (the versions meltano.yml pins), then one line per target:
# exact (every table's row count equals what the simulator served), rows missing although
# the run succeeded (silently dropped), or an error. Logs: output/batch-<target>.log.
# Starts a throwaway PostgreSQL as scripts/postgres_e2e.sh does (needs root to install it).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh
. scripts/_simulator.sh
. scripts/_postgres.sh

ensure_dev_venv
ensure_meltano_venv
export MELTANO_SEND_ANONYMOUS_USAGE_STATS=false MELTANO_DISABLE_TRACKING=true
MELTANO=.venv-meltano/bin/meltano
$MELTANO --log-level=warning install tap-segments target-jsonl target-duckdb target-postgres

start_postgres
start_simulator --scale demo
trap 'stop_simulator; stop_postgres' EXIT
export TAP_SEGMENTS_EXPORT_POLL_INTERVAL_SECONDS=1

mkdir -p output
rm -rf output/batch output/batch-jsonl output/batch.duckdb
export TAP_SEGMENTS_BATCH_CONFIG_ENCODING_FORMAT=jsonl
export TAP_SEGMENTS_BATCH_CONFIG_ENCODING_COMPRESSION=gzip
export TAP_SEGMENTS_BATCH_CONFIG_STORAGE_ROOT="file://$PWD/output/batch"
export TAP_SEGMENTS_BATCH_CONFIG_STORAGE_PREFIX=batch-
export TARGET_JSONL_DESTINATION_PATH=output/batch-jsonl TARGET_DUCKDB_FILEPATH=output/batch.duckdb
mkdir -p output/batch output/batch-jsonl

verdicts=()
for target in target-jsonl target-duckdb target-postgres; do
  log=output/batch-$target.log
  echo "==> meltano run tap-segments $target, with batch_config (log: $log)"
  code=0
  $MELTANO run --full-refresh tap-segments "$target" > "$log" 2>&1 || code=$?
  case $target in
    target-jsonl) where=(jsonl output/batch-jsonl) ;;
    target-duckdb) where=(duckdb output/batch.duckdb segments) ;;
    target-postgres) where=(postgres "$PG_DSN" segments) ;;
  esac
  verdicts+=("$(.venv/bin/python scripts/batch_verdict.py "$target" "$code" "$log" \
    "$SIMULATOR_URL" "${where[@]}")")
done
echo "==> BATCH messages (jsonl + gzip), per target"
printf '%s\n' "${verdicts[@]}"

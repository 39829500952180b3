#!/usr/bin/env bash
# The main job: a demo sync from the bundled vendor simulator into a DuckDB warehouse with
# `meltano run tap-segments target-duckdb`, then a short summary: the row count of every
# table next to what the simulator served, exports triggered / resumed / skipped, wall time.
# Meltano's own log goes to output/demo-meltano.log. Sets up everything it needs on a fresh
# machine; safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
. scripts/_venv.sh
. scripts/_simulator.sh

ensure_dev_venv
ensure_meltano_venv
export MELTANO_SEND_ANONYMOUS_USAGE_STATS=false MELTANO_DISABLE_TRACKING=true
MELTANO=.venv-meltano/bin/meltano

echo "==> meltano install (tap-segments and target-duckdb, defined inline in meltano.yml)"
$MELTANO --log-level=warning install tap-segments target-duckdb

start_simulator --scale demo
export TAP_SEGMENTS_EXPORT_POLL_INTERVAL_SECONDS=1

mkdir -p output
rm -f output/warehouse.duckdb
LOG=output/demo-meltano.log
echo "==> meltano run tap-segments target-duckdb (log: $LOG)"
run_started=$(date +%s)
# A fresh warehouse each demo, so ignore state a previous demo saved.
if ! $MELTANO run --full-refresh tap-segments target-duckdb > "$LOG" 2>&1; then
  tail -n 30 "$LOG"
  echo "demo: meltano run failed; its whole log is $LOG" >&2
  exit 1
fi
run_seconds=$(( $(date +%s) - run_started ))

version() { "$1" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])'; }
note="tap on Python $(version .meltano/extractors/tap-segments/venv/bin/python),"
note+=" target-duckdb on Python $(version .meltano/loaders/target-duckdb/venv/bin/python)"
note+=" with duckdb $(.meltano/loaders/target-duckdb/venv/bin/python -c 'import duckdb; print(duckdb.__version__)')"
.venv/bin/python scripts/demo_summary.py --warehouse output/warehouse.duckdb --schema segments \
  --simulator "$SIMULATOR_URL" --log "$LOG" --run-seconds "$run_seconds" \
  --seconds "$(( $(date +%s) - started ))" --note "$note"

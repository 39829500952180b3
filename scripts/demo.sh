#!/usr/bin/env bash
# The main job: a demo sync from the bundled vendor simulator into a DuckDB warehouse with
# `meltano run tap-segments target-duckdb`, then the row count of every table next to what
# the simulator served. Sets up everything it needs on a fresh machine; safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
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

echo "==> meltano run tap-segments target-duckdb"
mkdir -p output
rm -f output/warehouse.duckdb
# A fresh warehouse each demo, so ignore state a previous demo saved.
$MELTANO run --full-refresh tap-segments target-duckdb

echo "==> rows in output/warehouse.duckdb"
.venv/bin/python scripts/warehouse_counts.py duckdb output/warehouse.duckdb segments "$SIMULATOR_URL"

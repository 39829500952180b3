#!/usr/bin/env bash
# The main job: a demo sync from the bundled vendor simulator into a DuckDB warehouse with
# `meltano run tap-segments target-duckdb`, then the row count of every table next to what
# the simulator served. Sets up everything it needs on a fresh machine; safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh

ensure_dev_venv
ensure_meltano_venv
export MELTANO_SEND_ANONYMOUS_USAGE_STATS=false MELTANO_DISABLE_TRACKING=true
MELTANO=.venv-meltano/bin/meltano

echo "==> meltano install (tap-segments and target-duckdb, defined inline in meltano.yml)"
$MELTANO --log-level=warning install tap-segments target-duckdb

echo "==> starting the vendor simulator on 127.0.0.1"
rm -f .sim.env
.venv/bin/python -m simulator serve --scale demo --env-file .sim.env > output-simulator.log 2>&1 &
SIM_PID=$!
trap 'kill $SIM_PID 2>/dev/null || true; rm -f .sim.env output-simulator.log' EXIT
for _ in $(seq 100); do [ -s .sim.env ] && break; sleep 0.1; done
[ -s .sim.env ] || { echo "simulator did not start"; cat output-simulator.log; exit 1; }
# shellcheck disable=SC1091
. ./.sim.env
export TAP_SEGMENTS_EXPORT_POLL_INTERVAL_SECONDS=1

echo "==> meltano run tap-segments target-duckdb"
mkdir -p output
rm -f output/warehouse.duckdb
# A fresh warehouse each demo, so ignore state a previous demo saved.
$MELTANO run --full-refresh tap-segments target-duckdb

echo "==> rows in output/warehouse.duckdb"
.venv/bin/python scripts/warehouse_counts.py duckdb output/warehouse.duckdb segments "$SIMULATOR_URL"

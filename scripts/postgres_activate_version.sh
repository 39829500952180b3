#!/usr/bin/env bash
# ACTIVATE_VERSION into a real PostgreSQL: `artisan_segment_members` (a full snapshot of every
# segment each run, keyed by its export job) keeps only the latest snapshot when the tap
# emits ACTIVATE_VERSION messages (emit_activate_version_messages) and target-postgres
# deletes older versions (hard_delete). Two runs against the simulator; checks after each
# (scripts/activate_version_checks.py). Starts a throwaway PostgreSQL as postgres_e2e.sh does.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh
. scripts/_simulator.sh
. scripts/_postgres.sh

ensure_dev_venv
ensure_meltano_venv
export MELTANO_SEND_ANONYMOUS_USAGE_STATS=false MELTANO_DISABLE_TRACKING=true
MELTANO=.venv-meltano/bin/meltano
$MELTANO --log-level=warning install tap-segments target-postgres

start_postgres
start_simulator --scale demo
trap 'stop_simulator; stop_postgres' EXIT
export TAP_SEGMENTS_EXPORT_POLL_INTERVAL_SECONDS=1
export TAP_SEGMENTS_EMIT_ACTIVATE_VERSION_MESSAGES=true TARGET_POSTGRES_HARD_DELETE=true
STATE_ID=activate-version-$$
JOBS=$(mktemp /tmp/tap-segments-jobs.XXXXXX)
mkdir -p output

for step in first second; do
  log=output/activate-version-$step.log
  echo "==> $step run: meltano run tap-segments target-postgres (log: $log)"
  refresh=$([ "$step" = first ] && echo --full-refresh || true)
  $MELTANO run --state-id-suffix "$STATE_ID" $refresh tap-segments target-postgres > "$log" 2>&1 \
    || { tail -n 30 "$log"; exit 1; }
  .venv/bin/python scripts/activate_version_checks.py "$PG_DSN" segments "$SIMULATOR_URL" \
    "--$step" "$JOBS"
done
rm -f "$JOBS"

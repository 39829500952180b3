#!/usr/bin/env bash
# Scale out: four partitioned `meltano run tap-segments target-postgres` side by side under
# Dagster (multiprocess executor), with Meltano's state and the tap's BATCH files in S3-like
# object storage (moto's S3 server), loaded into a throwaway PostgreSQL. Everything binds
# 127.0.0.1 and stops when the script ends. It checks, and prints:
#   1. one unpartitioned run and the partitioned run of the same data (two identical
#      simulators): wall times and their ratio; with SQL, the union of the partitions'
#      tables equals the simulator's truth, no key twice; each partition's state is in the
#      bucket;
#   2. `kill -9` of one partition's tap while its exports are in flight, then a rerun of that
#      partition alone: the exports resume, no second trigger;
#   3. a rerun of every partition with nothing new triggers no change-aware export
#      (Indicative, Kissmetrics) and reads no Acoustic file again; Artisan segments, which
#      carry no change marker, are exported again by design.
# Sizes can be changed with SCALE_OUT_SIM_FLAGS (flags of `python -m simulator serve`);
# SCALE_OUT_KEEP=1 keeps the logs (Dagster, every partition's meltano run) in /tmp.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh
. scripts/_postgres.sh

SIM_FLAGS=${SCALE_OUT_SIM_FLAGS:-"--artisan-apps 4 --artisan-segments-per-app 3 \
  --artisan-members 3000 --segments 8 --rows-per-segment 4000 --export-seconds 5 \
  --kissmetrics-reports 1"}
SIM_FLAGS=$(echo "$SIM_FLAGS" | tr -s ' ')
BUCKET=tap-segments
started=$(date +%s)

ensure_dev_venv
ensure_meltano_venv
ensure_venv .venv-dagster "$(cat orchestration/requirements.txt)" -r orchestration/requirements.txt
export MELTANO_SEND_ANONYMOUS_USAGE_STATS=false MELTANO_DISABLE_TRACKING=true
MELTANO=.venv-meltano/bin/meltano
ORCHESTRATE=(.venv-dagster/bin/python -m orchestration)
CHECK=(.venv/bin/python scripts/scale_out_check.py)

WORK=$(mktemp -d /tmp/tap-segments-scale-out.XXXXXX)
export DAGSTER_HOME=$WORK/dagster PARTITION_SYS_DIRS=$WORK/meltano-sys
# Dagster's anonymous telemetry off: nothing here talks to anything but 127.0.0.1.
mkdir -p "$DAGSTER_HOME" && printf 'telemetry:\n  enabled: false\n' > "$DAGSTER_HOME/dagster.yaml"
export DAGSTER_DISABLE_TELEMETRY=1
SIM_PIDS=()
MOTO_PID=
cleanup() {
  for pid in "${SIM_PIDS[@]}" $MOTO_PID; do kill "$pid" 2> /dev/null || true; done
  stop_postgres
  if [ -n "${SCALE_OUT_KEEP:-}" ]; then echo "logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# -- object storage: moto's S3 server ---------------------------------------------------------
MOTO_PORT=$(free_port)
.venv/bin/moto_server -H 127.0.0.1 -p "$MOTO_PORT" > "$WORK/moto.log" 2>&1 &
MOTO_PID=$!
# fsspec/s3fs (tap and target: BATCH files) and boto3 read the endpoint from the environment;
# Meltano's S3 state backend uses its own endpoint setting, which 4.4.1 honours only with
# explicit keys.
export AWS_ENDPOINT_URL=http://127.0.0.1:$MOTO_PORT AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=moto-key AWS_SECRET_ACCESS_KEY=moto-secret
export MELTANO_STATE_BACKEND_URI=s3://$BUCKET/state
export MELTANO_STATE_BACKEND_S3_ENDPOINT_URL=$AWS_ENDPOINT_URL
export MELTANO_STATE_BACKEND_S3_AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID
export MELTANO_STATE_BACKEND_S3_AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
.venv/bin/python - "$BUCKET" << 'EOF'
import sys, time
import boto3, botocore.exceptions
for _ in range(100):
    try:
        boto3.client("s3").create_bucket(Bucket=sys.argv[1])
        break
    except botocore.exceptions.EndpointConnectionError:
        time.sleep(0.1)
else:
    sys.exit("moto's S3 server did not start")
EOF
echo "==> moto S3 server on $AWS_ENDPOINT_URL, bucket $BUCKET"

start_postgres
export TAP_SEGMENTS_EXPORT_POLL_INTERVAL_SECONDS=1 TAP_SEGMENTS_EXPORT_POLL_MAX_INTERVAL_SECONDS=2
export TARGET_POSTGRES_USE_COPY=true

# -- two identical simulators: one for the unpartitioned run, one for the partitioned runs ---
start_sim() {  # start_sim NAME: serve on a free port; its settings in $WORK/NAME.env
  # shellcheck disable=SC2086
  .venv/bin/python -m simulator serve --env-file "$WORK/$1.env" $SIM_FLAGS > "$WORK/$1.log" 2>&1 &
  SIM_PIDS+=($!)
  for _ in $(seq 100); do [ -s "$WORK/$1.env" ] && return 0; sleep 0.1; done
  echo "simulator $1 did not start:"; cat "$WORK/$1.log"; return 1
}
start_sim single
start_sim partitioned
with_sim() { (set -a; . "$WORK/$1.env"; set +a; shift; "$@"); }

echo "==> meltano install tap-segments target-postgres"
$MELTANO --log-level=warning install tap-segments target-postgres

with_sim single "${CHECK[@]}" plan "$WORK/single.json" --single --batch-root "s3://$BUCKET/batches"
with_sim partitioned "${CHECK[@]}" plan "$WORK/plan.json" --batch-root "s3://$BUCKET/batches"
"${ORCHESTRATE[@]}" --plan "$WORK/plan.json" check

orchestrate() {  # orchestrate SIM LOG ARGS...: python -m orchestration; the JSON summary line
  local sim=$1 log=$2
  shift 2
  with_sim "$sim" "${ORCHESTRATE[@]}" "$@" > "$log" 2>&1 || { tail -n 60 "$log" >&2; return 1; }
  tail -n 1 "$log"
}

echo "==> 1. one unpartitioned run (Dagster, one partition with every vendor)"
single=$(orchestrate single "$WORK/single.log" --plan "$WORK/single.json" run)
echo "$single"
echo "==> 1. the partitioned run: 4 partitions side by side (Dagster multiprocess executor)"
partitioned=$(orchestrate partitioned "$WORK/partitioned.log" --plan "$WORK/plan.json" run)
echo "$partitioned"
echo "==> SQL: the unpartitioned run against its simulator"
with_sim single "${CHECK[@]}" union "$WORK/single.json" | tail -n 2
echo "==> SQL: the union of the 4 partitions against their simulator"
with_sim partitioned "${CHECK[@]}" union "$WORK/plan.json" | tee "$WORK/union.txt"
"${CHECK[@]}" state "$WORK/plan.json" "$BUCKET" state

echo "==> 2. kill -9 of partition 'indicative-1' while its exports are in flight"
sim_url() { (. "$WORK/partitioned.env"; echo "$SIMULATOR_URL"); }
touched=$(.venv/bin/python -c 'import json, sys
plan = json.load(open(sys.argv[1]))
print(" ".join(plan["partitions"]["indicative-1"]["settings"]["indicative_segment_ids"][:2]))' \
  "$WORK/plan.json")
for segment in $touched; do  # the vendor refreshed two segments: they are due for export
  curl -s -X POST -d "{\"segmentId\": \"$segment\"}" "$(sim_url)/_sim/indicative/touch" > /dev/null
done
with_sim partitioned "${CHECK[@]}" counters "$WORK/before-kill.json"
with_sim partitioned "${ORCHESTRATE[@]}" --plan "$WORK/plan.json" run --partition indicative-1 \
  > "$WORK/killed.log" 2>&1 &
run_pid=$!
triggered() {
  curl -s "$(sim_url)/_sim/indicative/triggers" | .venv/bin/python -c '
import json, sys
now, before = json.load(sys.stdin), json.load(open(sys.argv[1]))["indicative_triggers"]
sys.exit(0 if all(now[s] > before[s] for s in sys.argv[2:]) else 1)' "$WORK/before-kill.json" $touched
}
for _ in $(seq 600); do triggered && break; sleep 0.1; done
triggered || { echo "the touched segments were not exported"; tail -n 40 "$WORK/killed.log"; exit 1; }
sleep 2  # the trigger's STATE reaches the target
tap_pid=$(pgrep -f "$PARTITION_SYS_DIRS/indicative-1/run/tap-segments/" | head -n 1 || true)
[ -n "$tap_pid" ] || { echo "the tap of indicative-1 ended before the kill"; exit 1; }
echo "exports triggered for segments $touched; kill -9 $tap_pid (the tap of partition indicative-1)"
kill -9 "$tap_pid"
if wait "$run_pid"; then echo "the killed run succeeded?"; exit 1; fi
tail -n 1 "$WORK/killed.log"
"${CHECK[@]}" saved-state "$WORK/plan.json" indicative-1 "$BUCKET" state "$WORK/killed-state.json"
with_sim partitioned "${CHECK[@]}" counters "$WORK/before-rerun.json"
echo "==> 2. rerun of partition 'indicative-1' alone"
orchestrate partitioned "$WORK/rerun-one.log" --plan "$WORK/plan.json" run --partition indicative-1
with_sim partitioned "${CHECK[@]}" counters "$WORK/after-rerun.json"
with_sim partitioned "${CHECK[@]}" resumed "$WORK/plan.json" indicative-1 "$WORK/before-rerun.json" \
  "$WORK/after-rerun.json" "$WORK/killed-state.json" "$BUCKET" state

echo "==> 3. rerun of every partition with nothing new"
orchestrate partitioned "$WORK/rerun-all.log" --plan "$WORK/plan.json" run
with_sim partitioned "${CHECK[@]}" counters "$WORK/after-rerun-all.json"
"${CHECK[@]}" quiet "$WORK/after-rerun.json" "$WORK/after-rerun-all.json"

rows=$(awk '/^all streams/ {print $3}' "$WORK/union.txt")
echo "==> scale-out figures (rows: simulator flags $SIM_FLAGS)"
.venv/bin/python - "$rows" "$single" "$partitioned" "$(nproc)" "$WORK/plan.json" << 'EOF'
import json, sys
rows, cores = int(sys.argv[1]), sys.argv[4]
single, partitioned = json.loads(sys.argv[2]), json.loads(sys.argv[3])
keys = list(json.load(open(sys.argv[5]))["partitions"])
print(f"partitions                         {len(keys)} ({', '.join(keys)})")
print(f"rows loaded                        {rows:,} by the partitions (= simulator truth, no key twice)")
for name, run in (("unpartitioned run", single), ("partitioned run", partitioned)):
    print(
        f"{name:<34} {run['seconds']:6.1f} s wall, {run['cpu_seconds']:6.1f} s CPU"
        f"  ({rows / run['seconds']:,.0f} rows/s)"
    )
for key in keys:
    print(f"  partition {key:<23} {partitioned['partitions'][key]['seconds']:6.1f} s")
print(f"ratio partitioned / unpartitioned  {partitioned['seconds'] / single['seconds']:6.2f} (wall time, {cores} cores)")
EOF
echo "==> scale-out checks passed in $(( $(date +%s) - started )) s"

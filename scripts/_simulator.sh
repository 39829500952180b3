# Shared by the set-up scripts: start the vendor simulator in the background. Sourced.

# start_simulator [ARGS...]: serve on a free loopback port, export its TAP_SEGMENTS_* settings
# and SIMULATOR_URL into this shell, and stop it when the shell exits.
start_simulator() {
  SIM_ENV=$(mktemp /tmp/tap-segments-sim.XXXXXX)
  SIM_LOG=$(mktemp /tmp/tap-segments-sim-log.XXXXXX)
  rm -f "$SIM_ENV"
  .venv/bin/python -m simulator serve --env-file "$SIM_ENV" "$@" > "$SIM_LOG" 2>&1 &
  SIM_PID=$!
  trap 'stop_simulator' EXIT
  for _ in $(seq 100); do [ -s "$SIM_ENV" ] && break; sleep 0.1; done
  [ -s "$SIM_ENV" ] || { echo "simulator did not start:"; cat "$SIM_LOG"; return 1; }
  # shellcheck disable=SC1090
  . "$SIM_ENV"
  echo "==> vendor simulator serving on $SIMULATOR_URL"
}

stop_simulator() {
  kill "$SIM_PID" 2>/dev/null || true
  rm -f "$SIM_ENV" "$SIM_LOG"
}

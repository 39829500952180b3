#!/usr/bin/env bash
# The test command: set up .venv if needed, then run the whole test suite (args go to pytest).
# The tests mostly wait (on the simulator's export jobs, on CLI runs), so pytest-xdist runs
# them in TEST_WORKERS processes (default 4, on any number of cores; 0: all in this one).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh
ensure_dev_venv
status=0
.venv/bin/python -m pytest -n "${TEST_WORKERS:-4}" --dist worksteal "$@" || status=$?
# pytest's exit 5 means no test was collected: a failure for a full run, so say so.
[ "$status" -ne 5 ] || echo "scripts/test.sh: pytest collected no tests (exit 5)" >&2
exit "$status"

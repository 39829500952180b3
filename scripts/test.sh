#!/usr/bin/env bash
# The test command: set up .venv if needed, then run the whole test suite (args go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh
ensure_dev_venv
status=0
.venv/bin/python -m pytest "$@" || status=$?
# pytest's exit 5 means no test was collected: a failure for a full run, so say so.
[ "$status" -ne 5 ] || echo "scripts/test.sh: pytest collected no tests (exit 5)" >&2
exit "$status"

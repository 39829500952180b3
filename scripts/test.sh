#!/usr/bin/env bash
# The test command: set up .venv if needed, then run the whole test suite (args go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh
ensure_dev_venv
exec .venv/bin/python -m pytest "$@"

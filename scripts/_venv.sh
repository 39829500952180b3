# Shared by the set-up scripts: create or refresh the project's virtual environments.
# Sourced, not run. A venv is rebuilt only when what it was built from changed.

# The interpreter the venvs are built from: $PYTHON if set, else the first of python3,
# python3.13 ... python3.10 on PATH that is at least Python 3.10.
find_python() {
  local candidate
  for candidate in ${PYTHON:-python3 python3.13 python3.12 python3.11 python3.10}; do
    if command -v "$candidate" > /dev/null 2>&1 \
      && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2> /dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  if [ -n "${PYTHON:-}" ]; then
    echo "error: PYTHON=$PYTHON does not run Python >= 3.10" >&2
  else
    echo "error: Python >= 3.10 is needed (python3 or python3.1x on PATH, or set PYTHON)" >&2
  fi
  return 1
}
PYTHON_BIN=$(find_python)

# Debian/Ubuntu ship `venv` without ensurepip unless pythonX.Y-venv is installed.
ensure_venv_module() {
  "$PYTHON_BIN" -c 'import ensurepip, venv' 2> /dev/null && return 0
  local package
  package="python$("$PYTHON_BIN" -c 'import sys; print("%d.%d" % sys.version_info[:2])')-venv"
  if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    echo "==> installing $package (needed to create virtual environments)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" > /dev/null
  else
    echo "error: $PYTHON_BIN cannot create virtual environments; install $package" >&2
    return 1
  fi
}

# pip install without the noise of unused local index locations some machines configure.
quiet_pip() {
  local dir=$1
  shift
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$@" 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  return "${PIPESTATUS[0]}"
}

# uv (from PyPI, in .venv-uv) builds the venvs: seconds where pip takes minutes (boto3, s3fs
# and aiobotocore pin botocore differently, and pip's resolver backtracks through them).
ensure_uv() {
  [ -x .venv-uv/bin/uv ] && return 0
  ensure_venv_module
  rm -rf .venv-uv
  "$PYTHON_BIN" -m venv .venv-uv && quiet_pip .venv-uv 'uv>=0.8.14'
}

# uv_venv DIR PIP_ARGS...: DIR made by uv on $PYTHON_BIN (never a Python uv would download),
# its modules compiled to bytecode as pip does (else, under PYTHONDONTWRITEBYTECODE, every
# start compiles singer_sdk again: 1.8 s instead of 0.5 s, measured).
uv_venv() {
  local dir=$1 interpreter
  shift
  interpreter=$("$PYTHON_BIN" -c 'import sys; print(sys.executable)')
  UV_PYTHON_DOWNLOADS=never .venv-uv/bin/uv venv --quiet --python "$interpreter" "$dir" \
    && UV_PYTHON_DOWNLOADS=never .venv-uv/bin/uv pip install --quiet --compile-bytecode \
      --python "$dir/bin/python" "$@"
}

# ensure_venv DIR STAMP_INPUT PIP_ARGS...: (re)create DIR unless its stamp matches; with uv,
# else (uv not installable, say) with venv and pip.
ensure_venv() {
  local dir=$1 stamp_input=$2
  shift 2
  local stamp
  stamp=$(printf '%s\n%s\n%s' "$stamp_input" "$($PYTHON_BIN --version 2>&1)" "bytecode" \
    | sha256sum | cut -c1-16)
  if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$stamp" ]; then
    return 0
  fi
  echo "==> setting up $dir (install $*)"
  rm -rf "$dir"
  if ! { ensure_uv && uv_venv "$dir" "$@"; }; then
    echo "==> uv could not set up $dir: with venv and pip instead"
    ensure_venv_module
    rm -rf "$dir"
    "$PYTHON_BIN" -m venv "$dir"
    quiet_pip "$dir" --upgrade pip
    quiet_pip "$dir" "$@"
  fi
  echo "$stamp" > "$dir/.stamp"
}

# The development venv: the tap, editable, with test and lint tools.
ensure_dev_venv() {
  ensure_venv .venv "$(cat pyproject.toml)" -e '.[test,lint]'
}

# Meltano itself, kept apart from the tap's dependencies (with boto3, for an s3:// state backend).
# The plugin venvs under .meltano/ are made from meltano's interpreter, so a new meltano venv
# makes them stale: drop them.
ensure_meltano_venv() {
  local before
  before=$(cat .venv-meltano/.stamp 2> /dev/null || true)
  ensure_venv .venv-meltano "meltano[s3]==4.4.1" 'meltano[s3]==4.4.1'
  [ "$before" = "$(cat .venv-meltano/.stamp)" ] || rm -rf .meltano/extractors .meltano/loaders
}

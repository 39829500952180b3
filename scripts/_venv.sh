# Shared by the set-up scripts: create or refresh the project's virtual environments.
# Sourced, not run. A venv is rebuilt only when what it was built from changed.

PYTHON_BIN=${PYTHON:-python3}

# pip install without the noise of unused local index locations some machines configure.
quiet_pip() {
  local dir=$1
  shift
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$@" 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  return "${PIPESTATUS[0]}"
}

# ensure_venv DIR STAMP_INPUT PIP_ARGS...: (re)create DIR unless its stamp matches.
ensure_venv() {
  local dir=$1 stamp_input=$2
  shift 2
  local stamp
  stamp=$(printf '%s\n%s' "$stamp_input" "$($PYTHON_BIN --version 2>&1)" | sha256sum | cut -c1-16)
  if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$stamp" ]; then
    return 0
  fi
  echo "==> setting up $dir (pip install $*)"
  rm -rf "$dir"
  "$PYTHON_BIN" -m venv "$dir"
  quiet_pip "$dir" --upgrade pip
  quiet_pip "$dir" "$@"
  echo "$stamp" > "$dir/.stamp"
}

# The development venv: the tap, editable, with test and lint tools.
ensure_dev_venv() {
  ensure_venv .venv "$(cat pyproject.toml)" -e '.[test,lint]'
}

# Meltano itself, kept apart from the tap's dependencies.
ensure_meltano_venv() {
  ensure_venv .venv-meltano "meltano==4.4.1" 'meltano==4.4.1'
}

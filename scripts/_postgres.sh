# Shared by the set-up scripts: a throwaway PostgreSQL server on 127.0.0.1. Sourced.
# (scripts/postgres_e2e.sh starts its server the same way, inline.)

# start_postgres: install Debian's `postgresql` when its binaries are missing (needs root, as
# in CI), start a server on a free loopback port in a temporary folder, create the role
# `loader` and the database `warehouse`, and export TARGET_POSTGRES_* and PG_DSN.
# stop_postgres stops it and removes the folder.
start_postgres() {
  if ! ls /usr/lib/postgresql/*/bin/pg_ctl > /dev/null 2>&1; then
    echo "==> installing PostgreSQL (Debian package postgresql)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq postgresql > /dev/null
  fi
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  PGDATA=$(mktemp -d /tmp/tap-segments-pg.XXXXXX)
  PGPORT=$(free_port)
  [ "$(id -u)" = 0 ] && chown postgres "$PGDATA"
  echo "==> starting PostgreSQL ($PG_BIN) on 127.0.0.1:$PGPORT"
  as_pg "'$PG_BIN/initdb' -D '$PGDATA' -U postgres -A scram-sha-256 --pwfile=<(echo postgres-pass)" \
    > /dev/null
  as_pg "'$PG_BIN/pg_ctl' -D '$PGDATA' -l '$PGDATA/server.log' -w \
    -o \"-c listen_addresses=127.0.0.1 -p $PGPORT -k '$PGDATA' -c max_connections=200\" start" \
    > /dev/null
  PGPASSWORD=postgres-pass psql -q -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres \
    -c "create role loader login password 'loader-pass'" -c "create database warehouse owner loader"
  export TARGET_POSTGRES_HOST=127.0.0.1 TARGET_POSTGRES_PORT=$PGPORT TARGET_POSTGRES_USER=loader
  export TARGET_POSTGRES_PASSWORD=loader-pass TARGET_POSTGRES_DATABASE=warehouse
  export PG_DSN="postgresql://loader:loader-pass@127.0.0.1:$PGPORT/warehouse"
}

stop_postgres() {
  [ -n "${PGDATA:-}" ] || return 0
  as_pg "'$PG_BIN/pg_ctl' -D '$PGDATA' -m fast -w stop" > /dev/null 2>&1 || true
  rm -rf "$PGDATA"
  PGDATA=
}

# PostgreSQL refuses to run as root: run it as the `postgres` user when we are root.
as_pg() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi; }

# A free TCP port on 127.0.0.1.
free_port() {
  "${PYTHON_BIN:-python3}" -c \
    'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

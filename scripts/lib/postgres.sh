#!/usr/bin/env bash
# Postgres for the project's scripts: ensure_postgres sets DATABASE_URL to a server that answers:
# DATABASE_URL if already set, else 127.0.0.1:5432, else a throwaway server started in a
# temporary folder (installing Debian's postgresql package first when it is missing and this runs
# as root) and stopped when the calling script exits. Meant to be sourced.

answers() { # host port
  if command -v pg_isready >/dev/null; then
    pg_isready -q -h "$1" -p "$2"
  else
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
  fi
}

pg_bin_dir() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
  done
  command -v initdb >/dev/null && { dirname "$(command -v initdb)"; return 0; }
  return 1
}

start_throwaway_postgres() {
  local bin
  if ! bin=$(pg_bin_dir); then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
      echo "test.sh: installing Debian's postgresql package" >&2
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
      bin=$(pg_bin_dir)
    else
      echo "test.sh: no Postgres answers and initdb is missing; install postgresql or set DATABASE_URL" >&2
      exit 1
    fi
  fi
  PG_TMP=$(mktemp -d /tmp/guardians-pg.XXXXXX)
  local port=55432
  while answers 127.0.0.1 "$port"; do port=$((port + 1)); done
  # initdb refuses to run as root: run the server as the postgres user (or a system user).
  local run=()
  if [ "$(id -u)" -eq 0 ]; then
    id -u postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$PG_TMP"
    run=(runuser -u postgres --)
  fi
  "${run[@]}" "$bin/initdb" -D "$PG_TMP/data" -U postgres --auth=trust -E UTF8 >/dev/null
  "${run[@]}" "$bin/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/log" -w \
    -o "-p $port -k $PG_TMP -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" start >/dev/null
  PG_STOP=("${run[@]}" "$bin/pg_ctl" -D "$PG_TMP/data" -m immediate stop)
  trap '"${PG_STOP[@]}" >/dev/null 2>&1 || true; rm -rf "$PG_TMP"' EXIT
  export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "test.sh: started a throwaway Postgres on port $port" >&2
}

ensure_postgres() {
  if [ -z "${DATABASE_URL:-}" ]; then
    if answers 127.0.0.1 5432; then
      export DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"
    else
      start_throwaway_postgres
    fi
  fi
}

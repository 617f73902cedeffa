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

# Commands run when the calling script exits, in order.
EXIT_TRAPS=()
run_exit_traps() {
  local t
  for t in "${EXIT_TRAPS[@]}"; do eval "$t" >/dev/null 2>&1 || true; done
}
add_exit_trap() {
  EXIT_TRAPS+=("$1")
  trap run_exit_traps EXIT
}

# The folder of initdb and pg_ctl, installing Debian's postgresql package when it is missing
# and this runs as root.
postgres_binaries() {
  local bin
  if ! bin=$(pg_bin_dir); then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
      echo "test.sh: installing Debian's postgresql package" >&2
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
      bin=$(pg_bin_dir)
    else
      echo "test.sh: initdb is missing; install postgresql or set DATABASE_URL" >&2
      exit 1
    fi
  fi
  echo "$bin"
}

# A free loopback port from $1 up.
free_port() {
  local port=$1
  while answers 127.0.0.1 "$port"; do port=$((port + 1)); done
  echo "$port"
}

# Sets AS_SERVER to the command prefix that runs a server process on folder $1: initdb and
# pg_ctl refuse to run as root, so as root they run as the postgres user (created if missing).
server_user_for() {
  AS_SERVER=()
  if [ "$(id -u)" -eq 0 ]; then
    id -u postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$1"
    AS_SERVER=(runuser -u postgres --)
  fi
}

start_throwaway_postgres() {
  local bin port
  bin=$(postgres_binaries)
  PG_TMP=$(mktemp -d /tmp/guardians-pg.XXXXXX)
  port=$(free_port 55432)
  server_user_for "$PG_TMP"
  "${AS_SERVER[@]}" "$bin/initdb" -D "$PG_TMP/data" -U postgres --auth=trust -E UTF8 >/dev/null
  "${AS_SERVER[@]}" "$bin/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/log" -w \
    -o "-p $port -k $PG_TMP -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" start >/dev/null
  add_exit_trap "${AS_SERVER[*]} $bin/pg_ctl -D $PG_TMP/data -m immediate stop; rm -rf $PG_TMP"
  export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "test.sh: started a throwaway Postgres on port $port" >&2
}

# For the read-replica tests: a primary of their own (the shared server may not accept
# replication connections) and a streaming standby of it made by `pg_basebackup -R`, in a
# temporary folder on free ports, stopped when the calling script exits. Exports
# GUARDIANS_TEST_PRIMARY_URL and GUARDIANS_TEST_STANDBY_URL.
start_standby_pair() {
  local bin dir primary standby
  bin=$(postgres_binaries)
  dir=$(mktemp -d /tmp/guardians-standby.XXXXXX)
  server_user_for "$dir"
  primary=$(free_port 56432)
  standby=$(free_port $((primary + 1)))
  local common="-k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100"
  "${AS_SERVER[@]}" "$bin/initdb" -D "$dir/primary" -U postgres --auth=trust -E UTF8 >/dev/null
  echo "host replication all 127.0.0.1/32 trust" >>"$dir/primary/pg_hba.conf"
  "${AS_SERVER[@]}" "$bin/pg_ctl" -D "$dir/primary" -l "$dir/primary.log" -w \
    -o "-p $primary $common -c wal_level=replica -c max_wal_senders=4" start >/dev/null
  add_exit_trap "${AS_SERVER[*]} $bin/pg_ctl -D $dir/primary -m immediate stop; rm -rf $dir"
  "${AS_SERVER[@]}" "$bin/pg_basebackup" -h 127.0.0.1 -p "$primary" -U postgres \
    -D "$dir/standby" -R -X stream -c fast
  "${AS_SERVER[@]}" "$bin/pg_ctl" -D "$dir/standby" -l "$dir/standby.log" -w \
    -o "-p $standby $common -c hot_standby=on" start >/dev/null
  # Runs before the primary's trap (which removes the folder).
  EXIT_TRAPS=("${AS_SERVER[*]} $bin/pg_ctl -D $dir/standby -m immediate stop" "${EXIT_TRAPS[@]}")
  export GUARDIANS_TEST_PRIMARY_URL="postgres://postgres@127.0.0.1:$primary/postgres"
  export GUARDIANS_TEST_STANDBY_URL="postgres://postgres@127.0.0.1:$standby/postgres"
  echo "test.sh: started a primary on port $primary and its standby on port $standby" >&2
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

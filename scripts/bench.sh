#!/usr/bin/env bash
# Benchmarks guardian-service against the machine's own limits, in one go (quality.md P1-P9):
# starts Postgres if needed, builds release, seeds the data set, starts the server (timing its
# start-up to SERVING), then alternates `pgbench -S` with each guardian-bench scenario at the same
# client concurrency (the reads, then CreateGuardianInvitation) and prints every ratio, plus the
# server's idle and peak resident memory.
#
#   scripts/bench.sh [--scale 1] [--requests 100000] [--concurrency 64] [--seconds 10] [--only P]
#
# --only runs one part after the seeding: reads (P1-P3, the writes and the feed), p4 (the CSV
# import, and the removal of its first round), p8 (summaries) or p9 (propagation).
#
# Results go to stdout and, as JSON lines, to target/bench/results.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/postgres.sh

SCALE=1 REQUESTS=100000 CONCURRENCY=64 SECONDS_PGBENCH=10 ONLY=
while [ $# -gt 0 ]; do
  case "$1" in
    --scale) SCALE=$2; shift 2 ;;
    --requests) REQUESTS=$2; shift 2 ;;
    --concurrency) CONCURRENCY=$2; shift 2 ;;
    --seconds) SECONDS_PGBENCH=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    *) echo "bench.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }

ensure_postgres
command -v pgbench >/dev/null || { echo "bench.sh: pgbench is required (Debian: postgresql-contrib or postgresql)" >&2; exit 1; }
cargo build --release --locked --bins -q

OUT=target/bench
mkdir -p "$OUT"
: > "$OUT/results.jsonl"
DB=guardians_bench
BASE=${DATABASE_URL%/*}
URL="$BASE/$DB"
SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null

echo "== seeding scale $SCALE"
./target/release/guardian-bench seed --database-url "$URL" --scale "$SCALE"
psql "$URL" -qc "VACUUM ANALYZE" >/dev/null
echo "== pgbench tables (scale 10)"
pgbench -q -i -s 10 "$URL" >/dev/null 2>&1

SERVERS=()
add_exit_trap 'kill "${SERVERS[@]}" 2>/dev/null; wait "${SERVERS[@]}" 2>/dev/null'
start_server() { # port http-port log: starts a replica on the bench database, waits for SERVING
  GUARDIANS_DATABASE_URL=$URL GUARDIANS_LISTEN=127.0.0.1:$1 GUARDIANS_HTTP_LISTEN=127.0.0.1:$2 \
    GUARDIANS_JWT_HS256_SECRET=$SECRET GUARDIANS_MAIL_DISPATCHER=false GUARDIANS_SUMMARY_SCHEDULER=false \
    RUST_LOG=warn ./target/release/guardian-service >"$OUT/$3" 2>&1 &
  SERVERS+=($!)
  until ./target/release/guardianctl --server "http://127.0.0.1:$1" health >/dev/null 2>&1; do
    kill -0 "${SERVERS[-1]}" 2>/dev/null || { echo "bench.sh: a server did not start:" >&2; cat "$OUT/$3" >&2; exit 1; }
    sleep 0.02
  done
}

echo "== starting the server"
HTTP_PORT=$(free_port)
started=$(date +%s%N)
start_server "$PORT" "$HTTP_PORT" server.log
SERVER=${SERVERS[0]}
ready=$(date +%s%N)
startup_ms=$(( (ready - started) / 1000000 ))
idle_kib=$(awk '/VmRSS/ {print $2}' /proc/$SERVER/status)
echo "start-up to SERVING: ${startup_ms} ms; idle RSS: $((idle_kib / 1024)) MiB"

pgbench_tps() { # clients
  pgbench -n -S -c "$1" -j 2 -T "$SECONDS_PGBENCH" "$URL" 2>/dev/null | awk '/^tps/ {print int($3)}'
}

# CPU time (clock ticks) used so far by the server, and by every Postgres process.
server_ticks() { awk '{ print $14 + $15 }' "/proc/$SERVER/stat"; }
postgres_ticks() {
  local pid total=0
  for pid in $(pgrep -x postgres); do
    total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}

# Runs one guardian-bench scenario; prints its JSON with the CPU each side spent per request
# (warm-up included): where a call's cost goes when the machine is the limit.
scenario() { # name concurrency [requests] [warm-up requests]
  local requests=${3:-$REQUESTS} warmup=${4:-2000} json server0 pg0 client
  server0=$(server_ticks) pg0=$(postgres_ticks)
  json=$(GUARDIANS_JWT_HS256_SECRET=$SECRET ./target/release/guardian-bench run --server "http://127.0.0.1:$PORT" \
    --scale "$SCALE" --scenario "$1" --concurrency "$2" --channels 4 --requests "$requests" \
    --warmup "$warmup" --json)
  # This subshell's children: the bench client alone (`times` redirected, not piped: a pipe
  # would run it in a subshell of its own, with no children).
  times >"$OUT/times"
  client=$(awk 'NR == 2 { gsub(/[ms]/, " "); print ($1 * 60 + $2) + ($3 * 60 + $4) }' "$OUT/times")
  awk -v j="$json" -v s="$(( $(server_ticks) - server0 ))" -v p="$(( $(postgres_ticks) - pg0 ))" \
    -v c="$client" -v n="$((requests + warmup))" -v hz="$(getconf CLK_TCK)" 'BEGIN {
      sub(/}$/, "", j)
      printf "%s,\"server_cpu_us\":%d,\"postgres_cpu_us\":%d,\"client_cpu_us\":%d}\n", j,
        s / hz * 1e6 / n, p / hz * 1e6 / n, c * 1e6 / n }'
}

report() { # label json pgbench_tps
  local rps p50 p99 errors
  rps=$(sed -E 's/.*"rps":([0-9.]+).*/\1/' <<<"$2")
  p50=$(sed -E 's/.*"p50_ms":([0-9.]+).*/\1/' <<<"$2")
  p99=$(sed -E 's/.*"p99_ms":([0-9.]+).*/\1/' <<<"$2")
  errors=$(sed -E 's/.*"errors":([0-9]+).*/\1/' <<<"$2")
  printf '%-28s %8.0f RPS  p50 %6.2f ms  p99 %6.2f ms  pgbench -S %6d TPS  ratio %.2f  errors %d\n' \
    "$1" "$rps" "$p50" "$p99" "$3" "$(awk -v a="$rps" -v b="$3" 'BEGIN { print (b > 0 ? a / b : 0) }')" "$errors"
  if [[ $2 == *server_cpu_us* ]]; then
    printf '%-28s CPU per call: server %s us, Postgres %s us, bench client %s us\n' "" \
      "$(sed -E 's/.*"server_cpu_us":([0-9]+).*/\1/' <<<"$2")" \
      "$(sed -E 's/.*"postgres_cpu_us":([0-9]+).*/\1/' <<<"$2")" \
      "$(sed -E 's/.*"client_cpu_us":([0-9]+).*/\1/' <<<"$2")"
  fi
  echo "{\"label\":\"$1\",\"pgbench_tps\":$3,\"result\":$2}" >> "$OUT/results.jsonl"
}

if want reads; then
echo "== alternating pgbench -S and guardian-bench (concurrency $CONCURRENCY, $REQUESTS requests each)"
# P1 cached: the default consistency (minimize_latency) once the replica's cache holds the
# data set: the warm-up asks three times as many questions as there are students first.
WARM_ALL=$(awk -v s="$SCALE" 'BEGIN { print int(300000 * s) }')
tps=$(pgbench_tps "$CONCURRENCY")
report "check cached @$CONCURRENCY" "$(scenario check "$CONCURRENCY" "$REQUESTS" "$WARM_ALL")" "$tps"
for name in check-consistent check-batch list-by-student list-by-student-consistent list-by-guardian; do
  tps=$(pgbench_tps "$CONCURRENCY")
  report "$name @$CONCURRENCY" "$(scenario "$name" "$CONCURRENCY")" "$tps"
done
tps=$(pgbench_tps 8)
report "check @8" "$(scenario check 8)" "$tps"
# Writes last, so that the reads above ran on the seeded data alone. Each request invites a new
# address (never used by an earlier run) for a seeded student: every OK is one invitation, its
# audit event and its queued email, committed.
CREATE_REQUESTS=$((REQUESTS / 5))
tps=$(pgbench_tps "$CONCURRENCY")
report "create @$CONCURRENCY" "$(scenario create "$CONCURRENCY" "$CREATE_REQUESTS")" "$tps"
# The same with three watchers of the whole feed attached (WatchGuardianChanges through
# guardianctl, JSON lines): the write rate beside them, and how long after the last write each
# watcher has every change committed since it started.
WATCH_TOKEN=$(GUARDIANS_JWT_HS256_SECRET=$SECRET ./target/release/guardian-service token --sub bench-watcher \
  --role service --domain '*' --scope guardians.read)
WATCHERS=()
events_before=$(psql "$URL" -Atc "SELECT count(*) FROM guardian_events")
# From the committed head, not from "now": a watcher that connects late still gets everything.
HEAD=$(./target/release/guardian-bench feed-head --database-url "$URL")
for w in 1 2 3; do
  GUARDIANS_TOKEN=$WATCH_TOKEN ./target/release/guardianctl --server "http://127.0.0.1:$PORT" \
    watch --domain '*' --from "$HEAD" --format json >"$OUT/watcher-$w.jsonl" 2>/dev/null &
  WATCHERS+=($!)
done
add_exit_trap 'kill "${WATCHERS[@]}" 2>/dev/null'
tps=$(pgbench_tps "$CONCURRENCY")
report "create @$CONCURRENCY, 3 watchers" "$(scenario create "$CONCURRENCY" "$CREATE_REQUESTS")" "$tps"
written_at=$(date +%s%N)
expected=$(( $(psql "$URL" -Atc "SELECT count(*) FROM guardian_events") - events_before ))
for w in 1 2 3; do
  until [ "$(wc -l <"$OUT/watcher-$w.jsonl")" -ge "$expected" ]; do
    [ $(( ($(date +%s%N) - written_at) / 1000000000 )) -lt 120 ] || break
    sleep 0.01
  done
done
drained_ms=$(( ($(date +%s%N) - written_at) / 1000000 ))
kill "${WATCHERS[@]}" 2>/dev/null || true
seen=$(for w in 1 2 3; do wc -l <"$OUT/watcher-$w.jsonl"; done | tr '\n' ' ')
unique=$(for w in 1 2 3; do sed -E 's/.*"token":"([^"]+)".*/\1/' "$OUT/watcher-$w.jsonl" | sort -u | wc -l; done | tr '\n' ' ')
echo "feed with 3 watchers: $expected changes committed; each watcher saw: $seen(distinct tokens: $unique); all caught up ${drained_ms} ms after the last write"
echo "{\"label\":\"feed 3 watchers\",\"expected\":$expected,\"seen\":\"$seen\",\"drained_ms\":$drained_ms}" >> "$OUT/results.jsonl"
fi

# P4: guardianctl importing 100,000 rows (10 new addresses for each of 10,000 seeded students,
# a different 10,000 each round), alternated with pgbench -S; the last round with three
# watchers of the whole feed attached, which must each see every change.
if want p4; then
echo "== P4 guardianctl invite, 100,000 rows a round"
report_rows() { # label verb rows started_ns ended_ns pgbench_tps: a round's rate and its ratio
  local ms=$((($5 - $4) / 1000000))
  printf '%-28s %8.0f rows/s  %d of 100000 %s in %d ms  pgbench -S %6d TPS  ratio %.2f\n' \
    "$1" "$(awk -v r="$3" -v ms="$ms" 'BEGIN { print r * 1000 / ms }')" "$3" "$2" "$ms" "$6" \
    "$(awk -v r="$3" -v ms="$ms" -v b="$6" 'BEGIN { print (b > 0 ? r * 1000 / ms / b : 0) }')"
  echo "{\"label\":\"$1\",\"rows\":$3,\"ms\":$ms,\"pgbench_tps\":$6}" >> "$OUT/results.jsonl"
}
IMPORT_TOKEN=$(GUARDIANS_JWT_HS256_SECRET=$SECRET ./target/release/guardian-service token --sub bench-import \
  --role service --domain '*' --scope guardians.write)
WATCH_TOKEN_P4=$(GUARDIANS_JWT_HS256_SECRET=$SECRET ./target/release/guardian-service token --sub bench-watcher \
  --role service --domain '*' --scope guardians.read)
rounds=$(awk -v s="$SCALE" 'BEGIN { r = int(100000 * s / 10000); print (r > 3 ? 3 : r) }')
for round in $(seq 1 "$rounds"); do
  first=$(( (round - 1) * 10000 ))
  awk -v first="$first" -v round="$round" 'BEGIN { print "student,guardian_email";
    for (i = first; i < first + 10000; i++) for (k = 0; k < 10; k++)
      printf "s%d,p4-%d-%d-%d@families.example\n", i, round, i, k }' >"$OUT/p4.csv"
  watching=""
  if [ "$round" -eq "$rounds" ] && [ "$rounds" -gt 1 ]; then
    watching=", 3 watchers"
    HEAD=$(./target/release/guardian-bench feed-head --database-url "$URL")
    WATCHERS=()
    for w in 1 2 3; do
      GUARDIANS_TOKEN=$WATCH_TOKEN_P4 ./target/release/guardianctl --server "http://127.0.0.1:$PORT" \
        watch --domain '*' --from "$HEAD" --format json >"$OUT/p4-watcher-$w.jsonl" 2>/dev/null &
      WATCHERS+=($!)
    done
    add_exit_trap 'kill "${WATCHERS[@]}" 2>/dev/null'
  fi
  tps=$(pgbench_tps "$CONCURRENCY")
  # The second of three rounds runs beside a check load (16 callers of fully_consistent
  # CheckGuardianship, the database path an import competes with), measured alone first.
  checking=""
  if [ "$round" -eq 2 ] && [ "$rounds" -gt 2 ]; then
    checking=", checks beside"
    check_alone=$(GUARDIANS_JWT_HS256_SECRET=$SECRET ./target/release/guardian-bench run \
      --server "http://127.0.0.1:$PORT" --scale "$SCALE" --scenario check-consistent \
      --concurrency 16 --channels 2 --duration 8s --warmup 500 --json)
    GUARDIANS_JWT_HS256_SECRET=$SECRET ./target/release/guardian-bench run \
      --server "http://127.0.0.1:$PORT" --scale "$SCALE" --scenario check-consistent \
      --concurrency 16 --channels 2 --duration 8s --warmup 500 --json >"$OUT/p4-checks.json" &
    CHECKS=$!
  fi
  events_before=$(psql "$URL" -Atc "SELECT count(*) FROM guardian_events")
  started=$(date +%s%N)
  GUARDIANS_TOKEN=$IMPORT_TOKEN ./target/release/guardianctl --server "http://127.0.0.1:$PORT" \
    invite --csv "$OUT/p4.csv" --report "$OUT/p4-report.csv" >"$OUT/p4.log" 2>&1 || true
  ended=$(date +%s%N)
  if [ -n "$checking" ]; then
    wait "$CHECKS" || true
    check_beside=$(cat "$OUT/p4-checks.json")
    for which in alone beside; do
      json=$check_alone
      [ "$which" = beside ] && json=$check_beside
      printf 'P4 checks %-7s %8.0f RPS  p50 %6.2f ms  p99 %6.2f ms  errors %d\n' "$which" \
        "$(sed -E 's/.*"rps":([0-9.]+).*/\1/' <<<"$json")" "$(sed -E 's/.*"p50_ms":([0-9.]+).*/\1/' <<<"$json")" \
        "$(sed -E 's/.*"p99_ms":([0-9.]+).*/\1/' <<<"$json")" "$(sed -E 's/.*"errors":([0-9]+).*/\1/' <<<"$json")"
      echo "{\"label\":\"P4 checks $which\",\"result\":$json}" >> "$OUT/results.jsonl"
    done
  fi
  ok=$(psql "$URL" -Atc "SELECT count(*) FROM invitations WHERE invited_email LIKE 'p4-$round-%'")
  report_rows "P4 round $round$watching$checking" invited "$ok" "$started" "$ended" "$tps"
  if [ -n "$watching" ]; then
    expected=$(( $(psql "$URL" -Atc "SELECT count(*) FROM guardian_events") - events_before ))
    for w in 1 2 3; do
      until [ "$(wc -l <"$OUT/p4-watcher-$w.jsonl")" -ge "$expected" ]; do
        [ $(( ($(date +%s%N) - ended) / 1000000000 )) -lt 120 ] || break
        sleep 0.05
      done
    done
    drained_ms=$(( ($(date +%s%N) - ended) / 1000000 ))
    kill "${WATCHERS[@]}" 2>/dev/null || true
    seen=$(for w in 1 2 3; do wc -l <"$OUT/p4-watcher-$w.jsonl"; done | tr '\n' ' ')
    echo "P4 feed with 3 watchers: $expected changes committed; each watcher saw: $seen; all caught up ${drained_ms} ms after the import ended"
    echo "{\"label\":\"P4 feed 3 watchers\",\"expected\":$expected,\"seen\":\"$seen\",\"drained_ms\":$drained_ms}" >> "$OUT/results.jsonl"
  fi
done
# The first round's 100,000 rows removed again through `guardianctl remove` (BulkDeleteGuardians
# by address, the link and the pending invitations of each pair: here each a PENDING invitation,
# cancelled with its event and email), alternated with pgbench -S as the imports are.
awk 'BEGIN { print "student,guardian_email";
  for (i = 0; i < 10000; i++) for (k = 0; k < 10; k++)
    printf "s%d,p4-1-%d-%d@families.example\n", i, i, k }' >"$OUT/p4-remove.csv"
tps=$(pgbench_tps "$CONCURRENCY")
started=$(date +%s%N)
GUARDIANS_TOKEN=$IMPORT_TOKEN ./target/release/guardianctl --server "http://127.0.0.1:$PORT" \
  remove --csv "$OUT/p4-remove.csv" --report "$OUT/p4-remove-report.csv" >"$OUT/p4-remove.log" 2>&1 || true
ended=$(date +%s%N)
ok=$(psql "$URL" -Atc "SELECT count(*) FROM invitations WHERE invited_email LIKE 'p4-1-%' AND removal_reason = 'CANCELLED'")
report_rows "P4 removal" cancelled "$ok" "$started" "$ended" "$tps"
fi
peak_kib=$(awk '/VmHWM/ {print $2}' /proc/$SERVER/status)
echo "server RSS: idle $((idle_kib / 1024)) MiB, peak $((peak_kib / 1024)) MiB"
echo "{\"startup_ms\":$startup_ms,\"idle_rss_kib\":$idle_kib,\"peak_rss_kib\":$peak_kib,\"scale\":$SCALE}" >> "$OUT/results.jsonl"

if want p8; then
# P8: every guardian due at once; the scheduler's run builds all their summaries into the
# outbox (in the bench process, the same code as the servers' scheduler and `summaries
# run-once`). Alternated with pgbench -S as the rest; each round rebuilds them all.
echo "== P8 summaries (every guardian due at once)"
for round in 1 2 3; do
  tps=$(pgbench_tps "$CONCURRENCY")
  line=$(./target/release/guardian-bench summaries --database-url "$URL" --scale "$SCALE" | tail -1)
  rate=$(sed -E 's/.*"summaries_per_second":([0-9.]+).*/\1/' <<<"$line")
  rss=$(sed -E 's/.*"peak_rss_mib":([0-9]+).*/\1/' <<<"$line")
  printf '%-28s %8.0f summaries/s  peak RSS %4d MiB  pgbench -S %6d TPS  ratio %.3f\n' \
    "summaries round $round" "$rate" "$rss" "$tps" "$(awk -v a="$rate" -v b="$tps" 'BEGIN { print (b > 0 ? a / b : 0) }')"
  echo "{\"label\":\"P8 summaries round $round\",\"pgbench_tps\":$tps,\"result\":$line}" >> "$OUT/results.jsonl"
done
fi

if want p9; then
# P9: a second replica B on the same database, its cache filled by the checks; every removal
# through A is timed until B reports it, while the `check` scenario loads B beside it. Last:
# it removes 1,000 seeded links.
echo "== P9 propagation (removed on A, unlinked on B's cache, under check load on B)"
PORT_B=$(free_port)
start_server "$PORT_B" "$(free_port)" server-b.log
GUARDIANS_JWT_HS256_SECRET=$SECRET ./target/release/guardian-bench run --server "http://127.0.0.1:$PORT_B" \
  --scale "$SCALE" --scenario check --concurrency 16 --channels 2 --duration 600s --json >"$OUT/p9-load.json" &
LOAD=$!
line=$(GUARDIANS_JWT_HS256_SECRET=$SECRET ./target/release/guardian-bench propagation \
  --server-a "http://127.0.0.1:$PORT" --server-b "http://127.0.0.1:$PORT_B" --scale "$SCALE" --removals 1000)
# A background job of a script ignores SIGINT: TERM ends it.
kill $LOAD 2>/dev/null || true; wait $LOAD 2>/dev/null || true
echo "P9 propagation: $line"
echo "{\"label\":\"P9 propagation\",\"result\":$line}" >> "$OUT/results.jsonl"
fi

#!/usr/bin/env bash
# Fuzzes the parsers that take untrusted input (fuzz/fuzz_targets: email, csv_input, page_token,
# jwt) with cargo fuzz on the stable toolchain (libFuzzer, no sanitizer: the code is safe Rust).
#
#   scripts/fuzz.sh [--seconds N] [target...]   explore: N seconds a target (default 60); new
#                                               inputs are added to fuzz/corpus/<target>
#   scripts/fuzz.sh --smoke [target...]         CI: replay the committed corpus, then a fixed
#                                               number of runs from a fixed seed (same inputs
#                                               every time); nothing is written to the corpus
#
# A crash stops the script with the input saved under fuzz/artifacts/<target>/ and the command
# that replays it. After exploring, shrink the corpus before committing it:
#   (cd fuzz && cargo fuzz cmin -s none <target>)
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

CARGO_FUZZ_VERSION=0.13.2
ALL_TARGETS=(email csv_input page_token jwt)
# Runs a target makes in a smoke run: a few seconds each on one core.
declare -A SMOKE_RUNS=([email]=2000000 [csv_input]=60000 [page_token]=1000000 [jwt]=300000)

mode=explore
seconds=60
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) mode=smoke ;;
    --seconds) seconds="$2"; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) targets+=("$1") ;;
  esac
  shift
done
[ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")

if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  echo "fuzz.sh: installing cargo-fuzz $CARGO_FUZZ_VERSION" >&2
  cargo install --quiet --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

build_flags=(-s none --release)
cargo fuzz build "${build_flags[@]}" 2>&1 | { grep -v '^\s*Compiling' || true; }

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

for target in "${targets[@]}"; do
  corpus="corpus/$target"
  mkdir -p "$corpus" "artifacts/$target"
  if [ "$mode" = smoke ]; then
    # New inputs go to a scratch directory (listed first); the committed corpus is only read.
    mkdir -p "$scratch/$target"
    args=("$scratch/$target" "$corpus" -- -seed=1 "-runs=${SMOKE_RUNS[$target]}")
  else
    args=("$corpus" -- "-max_total_time=$seconds")
  fi
  echo "== fuzz $target ($mode)"
  if ! cargo fuzz run "${build_flags[@]}" "$target" "${args[@]}" -rss_limit_mb=2048 \
      -print_final_stats=1 >"$scratch/$target.log" 2>&1; then
    grep -E 'panicked|ERROR|SUMMARY|Test unit written' -A3 "$scratch/$target.log" >&2 || tail -n 30 "$scratch/$target.log" >&2
    echo "fuzz.sh: $target crashed; replay with: (cd fuzz && cargo fuzz run ${build_flags[*]} $target artifacts/$target/<file>)" >&2
    exit 1
  fi
  grep -E 'stat::number_of_executed_units|stat::new_units_added' "$scratch/$target.log" | tr '\n' ' '
  echo
done

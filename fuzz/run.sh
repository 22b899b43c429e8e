#!/usr/bin/env bash
# Runs the fuzz targets of fuzz/ with cargo-fuzz (installed from crates.io
# into the tools cache by tests/tools/install.sh).
#   fuzz/run.sh smoke   short run of every target from the committed corpus
#                       with a fixed seed (`make fuzz-smoke`, part of `make test`)
#   fuzz/run.sh long    FUZZ_SECONDS (default 600) per target, one after the
#                       other (`make fuzz`); figures in fuzz/target/logs/
# New inputs go to fuzz/target/corpus/<target> (long) or
# fuzz/target/smoke-corpus/<target> (smoke, emptied first), both git-ignored,
# never to the committed fuzz/corpus; crashes to fuzz/artifacts/<target>/ (git-ignored).
# Stable Rust is enough: the default sanitizer is `none` (the controller is
# safe Rust); FUZZ_SANITIZER=address needs -Zsanitizer, which stable accepts
# with RUSTC_BOOTSTRAP=1 (set here), or use a nightly toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-smoke}
targets=${FUZZ_TARGETS:-dag_translate xds_request json_build}
sanitizer=${FUZZ_SANITIZER:-none}
if [ "$sanitizer" != none ]; then export RUSTC_BOOTSTRAP=1; fi

bash tests/tools/install.sh cargo_fuzz
eval "$(bash tests/tools/install.sh --print-env | grep CARGO_FUZZ_BIN)"
fuzz() { "$CARGO_FUZZ_BIN" fuzz "$@"; }

build_start=$(date +%s)
fuzz build -s "$sanitizer"
echo "[fuzz] built in $(( $(date +%s) - build_start ))s"

mkdir -p fuzz/target/logs
common=(-rss_limit_mb=2048 -max_len=4096 -timeout=20 -print_final_stats=1)
for t in $targets; do
  mkdir -p "fuzz/corpus/$t"
  case "$mode" in
    smoke)
      # Deterministic: fixed seed, a fixed number of runs (capped in time on
      # a slow machine), from the committed corpus only (a fresh scratch
      # directory takes what it finds; the long run's corpus is left alone).
      work=fuzz/target/smoke-corpus/$t
      rm -rf "$work" && mkdir -p "$work"
      args=(-seed=1 -runs="${FUZZ_SMOKE_RUNS:-5000}" -max_total_time="${FUZZ_SMOKE_SECONDS:-25}")
      ;;
    long)
      work=fuzz/target/corpus/$t
      mkdir -p "$work"
      args=(-max_total_time="${FUZZ_SECONDS:-600}" -len_control=0)
      ;;
    *) echo "usage: $0 smoke|long" >&2; exit 2 ;;
  esac
  log=fuzz/target/logs/$t-$mode.log
  start=$(date +%s)
  set +e
  fuzz run -s "$sanitizer" "$t" "$work" "fuzz/corpus/$t" -- "${common[@]}" "${args[@]}" >"$log" 2>&1
  status=$?
  set -e
  secs=$(( $(date +%s) - start ))
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  echo "[fuzz] $t ($mode): exit $status, ${secs}s, ${runs:-?} runs; last: ${last:-none}"
  if [ "$status" != 0 ]; then
    tail -n 60 "$log" >&2
    echo "[fuzz] $t failed; input in fuzz/artifacts/$t/, full log in $log" >&2
    exit 1
  fi
done

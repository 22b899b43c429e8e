#!/usr/bin/env bash
# Issue 7, scenario 5, upstream side: in-process rebuild of UPSTREAM Contour
# for the objects of controller/benches/rebuild.rs (cache_with(n)).
#
# Internal packages of github.com/projectcontour/contour can only be imported
# from inside that module, so this copies upstream's source (the Go module of
# $CONTOUR_VERSION, see tests/tools/install.sh contour_source) into a scratch
# directory, drops rebuild_bench_test.go.txt into it as internal/zzbench,
# checks the shape of what it builds (TestShape) and runs the benchmark
# pinned with taskset. Prints a table on stdout; `go test` output on stderr.
#
# Environment:
#   REBUILD_SIZES      proxies per run, comma-separated (1000,5000,10000)
#   REBUILD_BENCHTIME  go test -benchtime (10x)
#   REBUILD_SHAPE_N    proxies for TestShape (300)
#   BENCH_CPUS         taskset -c list (0,1; first CPU only on 1 CPU; none = unpinned)
#   REBUILD_WORK       scratch directory ($TOOLS_CACHE/upstream-rebuild-work)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
tools=$(cd "$here/.." && pwd)
# shellcheck source=../versions.env
source "$tools/versions.env"

CACHE=${TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/contour-rs/tools}
src="$CACHE/contour-src-$CONTOUR_VERSION"
work=${REBUILD_WORK:-$CACHE/upstream-rebuild-work}
sizes=${REBUILD_SIZES:-1000,5000,10000}
benchtime=${REBUILD_BENCHTIME:-10x}
shape_n=${REBUILD_SHAPE_N:-300}

log() { printf '[upstream-rebuild] %s\n' "$*" >&2; }

command -v go >/dev/null 2>&1 || { log "missing 'go': install Go (https://go.dev/doc/install)"; exit 1; }
[ -e "$src/go.mod" ] || bash "$tools/install.sh" contour_source
[ -e "$src/go.mod" ] || { log "no upstream source at $src"; exit 1; }

if [ -z "${BENCH_CPUS+x}" ]; then
  if [ "$(nproc)" -ge 2 ]; then BENCH_CPUS=0,1; else BENCH_CPUS=0; fi
fi
pin=()
if [ "$BENCH_CPUS" != none ] && [ -n "$BENCH_CPUS" ]; then
  command -v taskset >/dev/null 2>&1 || { log "missing 'taskset' (util-linux); BENCH_CPUS=none runs unpinned"; exit 1; }
  pin=(taskset -c "$BENCH_CPUS")
fi

# A fresh copy of the module (the module cache is read-only) with our
# package added; compiled once, outside the timed runs.
tree="$work/contour-$CONTOUR_VERSION"
rm -rf "$tree"
mkdir -p "$work"
cp -rL "$src" "$tree"
chmod -R u+w "$tree"
mkdir -p "$tree/internal/zzbench"
cp "$here/rebuild_bench_test.go.txt" "$tree/internal/zzbench/rebuild_bench_test.go"

log "compiling the benchmark against upstream Contour $CONTOUR_VERSION ($(go version | cut -d' ' -f3))"
(cd "$tree" && GOFLAGS=-mod=mod go test -c -o "$work/zzbench.test" ./internal/zzbench)

log "checking the shape of the DAG and the xDS resources ($shape_n proxies)"
(cd "$tree/internal/zzbench" && REBUILD_SHAPE_N=$shape_n "$work/zzbench.test" -test.run '^TestShape$' -test.count=1 -test.v >&2)

cpus=${pin[*]:-unpinned}
log "benchmarking sizes $sizes, benchtime $benchtime, ${cpus}"
load_before=$(uptime | sed "s/^ *//")
started=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
out="$work/bench.out"
(cd "$tree/internal/zzbench" && REBUILD_SIZES=$sizes "${pin[@]}" "$work/zzbench.test" \
  -test.run '^$' -test.bench '^BenchmarkRebuild$' -test.benchmem -test.benchtime="$benchtime" -test.count=1) | tee "$out" >&2
load_after=$(uptime | sed "s/^ *//")

# Lines look like:
# BenchmarkRebuild/full/n=1000-2  10  123456789 ns/op  9876543 B/op  12345 allocs/op
awk -v started="$started" -v cpus="$cpus" -v before="$load_before" -v after="$load_after" \
    -v version="$CONTOUR_VERSION" -v benchtime="$benchtime" '
  /^BenchmarkRebuild\// {
    split($1, parts, "/"); kind = parts[2]; n = parts[3]; sub(/^n=/, "", n); sub(/-[0-9]+$/, "", n)
    for (i = 2; i <= NF; i++) {
      if ($i == "ns/op") ns[kind, n] = $(i - 1)
      if ($i == "B/op") bytes[kind, n] = $(i - 1)
      if ($i == "allocs/op") allocs[kind, n] = $(i - 1)
    }
    if (!(n in seen)) { seen[n] = 1; order[++count] = n }
  }
  function ms(v) { return v == "" ? "-" : sprintf("%.2f", v / 1e6) }
  function mib(v) { return v == "" ? "-" : sprintf("%.1f", v / 1048576) }
  function k(v) { return v == "" ? "-" : sprintf("%.0fk", v / 1000) }
  END {
    if (count == 0) { print "no benchmark results" > "/dev/stderr"; exit 1 }
    printf "upstream Contour %s, in-process rebuild (%s, %s, benchtime %s)\n", version, started, cpus, benchtime
    printf "load before: %s\n", before
    printf "load after:  %s\n\n", after
    printf "| proxies | full rebuild ms/op | allocs/op | MiB/op | Build() only ms/op | allocs/op | MiB/op | EndpointSlice update ms/op |\n"
    printf "|--------:|-------------------:|----------:|-------:|-------------------:|----------:|-------:|---------------------------:|\n"
    for (i = 1; i <= count; i++) {
      n = order[i]
      printf "| %7s | %18s | %9s | %6s | %18s | %9s | %6s | %26s |\n", n,
        ms(ns["full", n]), k(allocs["full", n]), mib(bytes["full", n]),
        ms(ns["build", n]), k(allocs["build", n]), mib(bytes["build", n]), ms(ns["eds", n])
    }
    printf "\nfull rebuild = Build() + OnChange of every xDS cache + snapshot + status updates (upstream does this for any HTTPProxy/Service/Secret change)\n"
  }' "$out"

#!/usr/bin/env bash
# CPU flame graph of a running process (issue 7: "where we miss a target,
# profile"). Samples every thread of PID for SECONDS with perf (DWARF call
# graphs: release builds keep no frame pointers), then folds the stacks and
# draws an SVG with inferno.
#
#   tests/tools/flamegraph.sh PID SECONDS OUT.svg [TITLE]
#
# Kernel frames are included (`perf` as root), so time spent sending on
# sockets shows up as such.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 3 ] || { echo "usage: $0 PID SECONDS OUT.svg [TITLE]" >&2; exit 2; }
pid=$1 seconds=$2 out=$3 title=${4:-"pid $1, $2 s"}
command -v perf >/dev/null 2>&1 || { echo "flamegraph: perf is not installed" >&2; exit 1; }
bash "$here/install.sh" inferno
eval "$(bash "$here/install.sh" --print-env)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
perf record -q -F 499 --call-graph dwarf,16384 -p "$pid" -o "$work/perf.data" -- sleep "$seconds" 2>"$work/record.log" || {
  cat "$work/record.log" >&2; exit 1; }
perf script -i "$work/perf.data" 2>/dev/null | "$INFERNO_DIR/inferno-collapse-perf" > "$work/folded"
"$INFERNO_DIR/inferno-flamegraph" --title "$title" --width 1400 --minwidth 0.15 < "$work/folded" > "$out"
echo "flamegraph: $(wc -l < "$work/folded") distinct stacks -> $out" >&2

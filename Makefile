# Contour (Rust): control plane, operator and chart.
#   make test   fmt check + clippy -D warnings + every test (installs the tools first)
#   make demo   the main job on a local embedded control plane (DEMO_ARGS=--once to stop after it)
#   make tools  build/install etcd, kube-apiserver, helm, Envoy (cached by version)
#   make fuzz   long fuzzing run of every fuzz/ target (fuzz-smoke, the short one, is in make test)
#   make soak   the fault and hostile-client tests SOAK_ROUNDS times in a row, then make fuzz
#   make crds   regenerate the CRD YAML the chart ships, and docs/api.md, from the Rust types
#   make bench  benchmarks (figures go to BENCHMARKS.md); bench-coldstart, bench-churn,
#               bench-fanout, bench-operator: issue 7's scenarios vs upstream (bench-issue7: all);
#               bench-layout: Envoy's cost of one new host by route layout

SHELL := /bin/bash
CARGO ?= cargo
CRD_DIR := helm/contour-operator/crds

.PHONY: all build test lint fmt tools crds crds-check demo fuzz fuzz-smoke soak bench bench-compare bench-propagation bench-coldstart bench-churn bench-fanout bench-layout bench-operator bench-rebuild-upstream bench-rebuild-upstream-smoke bench-issue7 clean

all: build

build:
	$(CARGO) build --workspace --all-targets

tools:
	bash tests/tools/install.sh all

crds:
	$(CARGO) run -q -p contour-crds --bin crdgen -- $(CRD_DIR) --docs docs/api.md

crds-check:
	$(CARGO) run -q -p contour-crds --bin crdgen -- --check $(CRD_DIR) --docs docs/api.md

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	cd fuzz && $(CARGO) fmt -- --check && $(CARGO) clippy --all-targets -- -D warnings

test: tools lint
	$(CARGO) test --workspace --no-fail-fast
	$(MAKE) fuzz-smoke
	REBUILD_SIZES=100 $(CARGO) test -p contour --bench rebuild
	$(MAKE) bench-rebuild-upstream-smoke

# Fuzzing (fuzz/, cargo-fuzz + libFuzzer on stable Rust; see fuzz/README.md).
# fuzz-smoke: every target briefly from the committed corpus, fixed seed
# (part of `make test`); fuzz: FUZZ_SECONDS (default 600) per target.
fuzz-smoke:
	bash fuzz/run.sh smoke

fuzz:
	bash fuzz/run.sh long

# Long reliability runs (issue 8; RELIABILITY.md): every fault, outage and
# hostile-client test SOAK_ROUNDS times in a row (stops at the first
# failure), then the long fuzzing run.
SOAK_ROUNDS ?= 10
SOAK_TESTS := --test faults --test fault_apiserver --test serve_ops --test hostile_xds --test operator_outage --test operator_leader --test bad_input
soak: tools
	for i in $$(seq 1 $(SOAK_ROUNDS)); do \
	  echo "soak: round $$i of $(SOAK_ROUNDS)"; \
	  $(CARGO) test -p contour-tests $(SOAK_TESTS) || exit 1; \
	done
	$(MAKE) fuzz

demo: tools
	$(CARGO) build -q -p contour-tests --bin demo --bin contour-under-test --bin contour-operator-under-test
	$(CARGO) run -q -p contour-tests --bin demo -- $(DEMO_ARGS)

# Speed and memory figures (recorded in BENCHMARKS.md). Never run by `make test`.
bench: tools
	$(CARGO) bench -p contour --bench rebuild
	$(CARGO) bench -p contour-tests --bench latency

# Side by side with upstream Contour (builds it from the Go module proxy once).
bench-compare: tools
	bash tests/tools/install.sh upstream_contour
	LATENCY_TARGETS=ours,upstream $(CARGO) bench -p contour-tests --bench latency

# Issue 7 scenarios, one command each, ours and upstream side by side (TARGETS=ours
# for ours alone); tables on stdout, CSV + PNG into docs/bench/ (BENCH_OUT overrides).
# Sizes are the issue's; each scenario's env vars override them (see tests/src/bench/).
# Smoke versions with tiny sizes run in `make test` (tests/tests/bench_smoke.rs).
BENCH_TARGETS ?= ours,upstream

bench-propagation: tools
	bash tests/tools/install.sh upstream_contour
	TARGETS=$(BENCH_TARGETS) $(CARGO) bench -p contour-tests --bench propagation

bench-coldstart: tools
	bash tests/tools/install.sh upstream_contour
	TARGETS=$(BENCH_TARGETS) $(CARGO) bench -p contour-tests --bench coldstart

bench-churn: tools
	bash tests/tools/install.sh upstream_contour
	TARGETS=$(BENCH_TARGETS) $(CARGO) bench -p contour-tests --bench churn

bench-fanout: tools
	bash tests/tools/install.sh upstream_contour
	TARGETS=$(BENCH_TARGETS) $(CARGO) bench -p contour-tests --bench fanout

# Envoy alone: what one new host costs it with every host in one route
# configuration or a scope per host, over SotW and delta ADS (no controller).
bench-layout: tools
	$(CARGO) bench -p contour-tests --bench layout

# Upstream's counterpart is its Gateway provisioner (a Gateway whose class
# points at a ContourDeployment); scenario 5's is bench-rebuild-upstream.
bench-operator: tools
	bash tests/tools/install.sh upstream_contour
	TARGETS=$(BENCH_TARGETS) $(CARGO) bench -p contour-tests --bench operator

# Scenario 5, upstream side: upstream Contour's own rebuild (its Go packages wired
# as `contour serve` wires them) for the objects of controller/benches/rebuild.rs
# (ours: `make bench`, criterion).
bench-rebuild-upstream: tools
	bash tests/tools/upstream-rebuild/run.sh

# Its smoke version (part of `make test`): the shape check and one tiny run.
bench-rebuild-upstream-smoke:
	REBUILD_SIZES=100 REBUILD_BENCHTIME=1x REBUILD_SHAPE_N=100 BENCH_CPUS=none \
	  bash tests/tools/upstream-rebuild/run.sh

bench-issue7: bench-propagation bench-coldstart bench-churn bench-fanout bench-operator bench-rebuild-upstream

clean:
	$(CARGO) clean

# Contour (Rust): control plane, operator and chart.
#   make test   fmt check + clippy -D warnings + every test (installs the tools first)
#   make demo   the main job on a local embedded control plane
#   make tools  build/install etcd, kube-apiserver, helm, Envoy (cached by version)
#   make crds   regenerate the CRD YAML the chart ships from the Rust types
#   make bench  benchmarks (figures go to BENCHMARKS.md)

SHELL := /bin/bash
CARGO ?= cargo
CRD_DIR := helm/contour-operator/crds

.PHONY: all build test lint fmt tools crds crds-check demo bench clean

all: build

build:
	$(CARGO) build --workspace --all-targets

tools:
	bash tests/tools/install.sh all

crds:
	$(CARGO) run -q -p contour-crds --bin crdgen -- $(CRD_DIR)

crds-check:
	$(CARGO) run -q -p contour-crds --bin crdgen -- --check $(CRD_DIR)

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test: tools lint
	$(CARGO) test --workspace --no-fail-fast

demo:
	@echo "make demo will, on an embedded local control plane:"
	@echo "  1. build contour and contour-operator"
	@echo "  2. start etcd + kube-apiserver on loopback (the test ground in tests/)"
	@echo "  3. install the chart's CRDs and the operator, apply a sample ContourDeployment"
	@echo "  4. run the rendered Contour and Envoy as local processes"
	@echo "  5. start a sample backend and apply the seed's kuard example as Ingress, IngressRoute and HTTPProxy"
	@echo "  6. show kubectl get output and real responses through Envoy"
	@echo "The control plane and operator are not built yet (issues 3-6); today only the test ground runs:"
	$(MAKE) tools
	$(CARGO) test -p contour-tests --test envoy_static --test crds

# Speed and memory figures (recorded in BENCHMARKS.md). Never run by `make test`.
bench: tools
	$(CARGO) bench -p contour --bench rebuild
	$(CARGO) bench -p contour-tests --bench latency

clean:
	$(CARGO) clean

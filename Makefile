# kubox build, test and benchmark entry points.
SHELL := /bin/bash
GO ?= go
KUBE_VERSION := $(shell awk '$$1 == "k8s.io/kubernetes" && $$2 ~ /^v/ { print $$2; exit }' go.mod)
KUBE_MINOR := $(word 2,$(subst ., ,$(KUBE_VERSION)))
VERSION ?= $(shell git describe --tags --match 'v*' 2>/dev/null || echo v0.1.0-dev)
COMMIT ?= $(shell git rev-parse --verify -q HEAD 2>/dev/null || echo unknown)
BUILD_DATE := $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
# providerless: no cloud providers. kustomize_disable_go_plugin_support:
# kubectl's kustomize would otherwise link Go's plugin package, which makes
# the linker export every symbol (about 45 MB of dynamic symbol table).
TAGS := providerless kustomize_disable_go_plugin_support
# kubox builds and tests against k8s.io/kubernetes with the patches that
# scripts/k8s-patch.sh applies and explains, through this Go workspace.
KGO := GOWORK=$(CURDIR)/build/k8s/go.work $(GO)

# Upstream components report these through /version and --version.
VERSION_PKGS := k8s.io/component-base/version k8s.io/client-go/pkg/version
LDFLAGS := -s -w \
	-X github.com/kubox-io/kubox/pkg/version.Version=$(VERSION) \
	-X github.com/kubox-io/kubox/pkg/version.Commit=$(COMMIT) \
	$(foreach p,$(VERSION_PKGS), \
		-X $(p).gitVersion=$(KUBE_VERSION) \
		-X $(p).gitMajor=1 \
		-X $(p).gitMinor=$(KUBE_MINOR) \
		-X $(p).gitCommit=$(COMMIT) \
		-X $(p).gitTreeState=clean \
		-X $(p).buildDate=$(BUILD_DATE))

.PHONY: all build k8s-patch test test-unit test-integration test-install bench bench-report clean deps payload release release-deps test-release conformance conformance-deps

all: build

build: bin/kubox

bin/kubox: FORCE payload k8s-patch
	@mkdir -p bin
	CGO_ENABLED=1 $(KGO) build -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o bin/kubox ./cmd/kubox
	ln -sf kubox bin/kubectl
	ln -sf kubox bin/crictl

FORCE:

k8s-patch:
	bash scripts/k8s-patch.sh build/k8s

# runc, containerd-shim-runc-v2, the CNI plugins and pause, packed into
# pkg/bundle/assets/payload.tar.zst, which bin/kubox embeds.
payload:
	bash scripts/build-payload.sh build/payload

# Host packages the tests need (root, Debian).
deps:
	bash scripts/install-deps.sh

test: test-unit test-integration test-install

# Unit tests of these packages also run under the race detector. They are
# the ones that link no client-go (config links apimachinery, for the
# PodSecurity configuration's upstream check: 40 s more on a cold cache):
# client-go and the rest built with -race take about 7 minutes more.
RACE_PKGS := atomicfile bundle cgroups component config config/paths configfile flock images images/oci killall loadbalancer logging sfx

test-unit: k8s-patch
	$(KGO) vet -tags '$(TAGS)' ./...
	$(KGO) test -tags '$(TAGS)' ./pkg/... ./cmd/... ./tests/images/... ./tests/bench/... ./tests/conformance/...
	$(KGO) test -race -tags '$(TAGS)' $(addprefix ./pkg/,$(RACE_PKGS))
	$(KGO) test -tags '$(TAGS)' -count=1 ./tests/repo/...

test-integration: build
	$(KGO) test -tags '$(TAGS)' -count=1 -timeout 10m -v ./tests/inprocess/... 2>&1 | awk -f scripts/test-summary.awk; exit $${PIPESTATUS[0]}
	KUBOX_BIN=$(CURDIR)/bin/kubox $(KGO) test -tags '$(TAGS)' -count=1 -timeout 40m -v ./tests/integration/... 2>&1 | tee /tmp/kubox-integration.log | awk -f scripts/test-summary.awk; exit $${PIPESTATUS[0]}

# install.sh piped from curl out of a release folder on loopback, the node
# its service runs, and its uninstall script.
test-install: build
	KUBOX_BIN=$(CURDIR)/bin/kubox $(GO) test -count=1 -timeout 10m -v ./tests/install/...

# Released files in dist/: kubox-<arch> (self-extracting, see pkg/sfx),
# sha256sum-<arch>.txt, install.sh. ARCHES defaults to amd64 arm64 arm; the
# cross compilers come from `make release-deps`.
ARCHES ?= amd64 arm64 arm
release:
	KUBOX_LDFLAGS='$(LDFLAGS)' KUBOX_TAGS='$(TAGS)' bash scripts/release.sh $(ARCHES)

release-deps:
	bash scripts/install-release-deps.sh

# The released files check out and run (arm ones under qemu-user-static).
test-release: release
	bash scripts/test-release.sh $(ARCHES)

# kubox against upstream Kubernetes run as separate processes (kubeadm's
# layout), built here from the same k8s.io/kubernetes module with the same
# tags, so the build cache serves both. Results: results/ (see README).
# BENCH_ARGS passes flags to the bench, e.g. BENCH_ARGS='-runs 3'. The table
# also goes into README.md, between its bench-results markers.
BENCH_BIN := build/bench/bin
BASELINE_CMDS := kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy
bench: build
	@mkdir -p $(BENCH_BIN)
	@for c in $(BASELINE_CMDS); do \
		echo "build $$c"; \
		CGO_ENABLED=1 $(GO) build -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $(BENCH_BIN)/$$c k8s.io/kubernetes/cmd/$$c || exit 1; \
	done
	CGO_ENABLED=0 $(GO) build -ldflags '-s -w' -o $(BENCH_BIN)/etcd go.etcd.io/etcd/server/v3
	CGO_ENABLED=0 $(GO) build -C tests/bench/containerd -ldflags '-s -w' -o $(CURDIR)/$(BENCH_BIN)/containerd github.com/containerd/containerd/v2/cmd/containerd
	$(GO) build -tags '$(TAGS)' -o build/bench/kubox-bench ./tests/bench
	./build/bench/kubox-bench -readme README.md $(BENCH_ARGS)

# The bench's report and README block rendered again from results/results.json,
# with file sizes as they are now (e.g. after `make release ARCHES=amd64`).
bench-report:
	$(GO) build -tags '$(TAGS)' -o build/bench/kubox-bench ./tests/bench
	./build/bench/kubox-bench -report-only -readme README.md

# The Kubernetes conformance suite (e2e.test from the k8s.io/kubernetes
# version kubox embeds) against a kubox server and agent in network
# namespaces, with every image made offline (tests/conformance). Not part of
# `make test`: the whole suite takes about an hour. FOCUS and SKIP narrow or
# widen it (ginkgo regular expressions), NODES sets its parallelism; the
# JUnit report and summary.md go to results/conformance.
conformance: build
	bash tests/conformance/build.sh build/conformance
	KUBOX_BIN=$(CURDIR)/bin/kubox bash tests/conformance/run.sh

# debootstrap, for the test images' Debian root.
conformance-deps:
	bash scripts/install-conformance-deps.sh

clean:
	rm -rf bin dist build

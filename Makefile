# airlock: make demo runs the main job end to end on loopback registries; make test runs the tests.
GO        ?= go
BIN       := bin/airlock
TOOLS     := .tools/bin
export PATH := $(CURDIR)/$(TOOLS):$(PATH)

.PHONY: build test unit e2e fuzz fuzz-short lint demo bench tools reliability-doc reliability-check mutate mutate-gate clean

build:
	$(GO) build -o $(BIN) ./cmd/airlock

## tools: installs registry, cosign and regctl into .tools/bin through go install
tools:
	scripts/install-tools.sh

## test: every test: lint (gofmt, vet, staticcheck), unit tests under the race detector, each fuzz
## target briefly, mutation testing of the signature checks, then the end-to-end tests against real
## registries and cosign
test: lint unit fuzz-short mutate-gate e2e

## unit: the product's unit tests, under the race detector (the tar writer and the engine are
## concurrent); go vet runs in lint
unit:
	$(GO) test -race ./...

## e2e: every end-to-end test; a passing run also regenerates docs/reliability.md in memory and fails
## if it differs from the committed file (AIRLOCK_RELIABILITY_CHECK=1)
e2e: tools
	cd e2e && $(GO) vet -tags $(E2E_TAGS) ./... && AIRLOCK_RELIABILITY_CHECK=1 $(GO) test -tags $(E2E_TAGS) -count=1 -timeout 20m ./...

## fuzz: each fuzz target for FUZZTIME (default 30s); fuzz-short: 30000 inputs each (2-6 s here), as
## CI runs them. fuzz-short counts inputs rather than seconds: Go 1.26's fuzz coordinator can fail a
## target with a bare "context deadline exceeded" when -fuzztime's wall clock ends while a worker is
## busy (golang/go#75804, fixed in Go 1.27); a count has no deadline to race.
fuzz:
	FUZZTIME=$${FUZZTIME:-30s} scripts/fuzz.sh

fuzz-short:
	FUZZTIME=30000x scripts/fuzz.sh

## mutate: gremlins over every product package: test efficacy and mutator coverage per package, every
## mutant the tests let through, and a failure when verify or archive fall below 95% efficacy / 85%
## coverage, or mirror, registry or config below 90% efficacy (docs/mutation.md); PKGS="verify archive"
## for some only. It takes one to two hours on two cores.
## Every run starts with the canary (scripts/mutation-canary): it fails the run when gremlins reports
## mutants of a test that asserts nothing killed, i.e. when the tool is not measuring (issue 20).
mutate:
	scripts/mutate.sh $(PKGS)

## mutate-gate: the part of make test: the canary, then the signature checks of verify only (honestly
## measured since issue 20: 569 s on two idle cores in the clean-clone CI run at c06115d, 269 mutants; docs/mutation.md)
mutate-gate:
	scripts/mutate.sh --gate

## reliability-doc: rewrite docs/reliability.md from the fault-injection and damaged-archive tests
reliability-doc: tools
	cd e2e && $(GO) test -count=1 -run 'Fault|Damaged|BadInput|Auth|Token' -update-reliability ./

## reliability-check: only the tests behind docs/reliability.md, failing if the file differs from them
reliability-check: tools
	cd e2e && AIRLOCK_RELIABILITY_CHECK=1 $(GO) test -count=1 -run 'Fault|Damaged|BadInput|Auth|Token' ./

# e2e/cmd/imagepolicy links containers/image: without gpgme (cgo) it needs this tag.
E2E_TAGS = containers_image_openpgp,exclude_graphdriver_btrfs

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd e2e && $(GO) vet -tags $(E2E_TAGS) ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
	cd e2e && $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 -tags $(E2E_TAGS) ./...

## demo: starts loopback registries, seeds a signed sample, saves it and prints inspect
demo: build tools
	cd e2e && $(GO) run ./cmd/demo -airlock $(CURDIR)/$(BIN) -work $(CURDIR)/out/demo

## bench: builds a ~1 GiB corpus on loopback registries and compares airlock with regctl, skopeo
## and a raw copy (see docs/benchmarks.md); BENCHFLAGS="-scale 0.25 -rounds 3" for a quicker run
bench: build tools
	scripts/install-bench-tools.sh
	cd e2e && $(GO) run ./cmd/bench -airlock $(CURDIR)/$(BIN) $(BENCHFLAGS)

clean:
	rm -rf bin out

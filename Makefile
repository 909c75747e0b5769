# airlock: make demo runs the main job end to end on loopback registries; make test runs the tests.
GO        ?= go
BIN       := bin/airlock
TOOLS     := .tools/bin
export PATH := $(CURDIR)/$(TOOLS):$(PATH)

.PHONY: build test unit e2e lint demo bench tools clean

build:
	$(GO) build -o $(BIN) ./cmd/airlock

## tools: installs registry, cosign and regctl into .tools/bin through go install
tools:
	scripts/install-tools.sh

## test: every test: unit tests, then the end-to-end tests against real registries and cosign
test: unit e2e

unit:
	$(GO) vet ./...
	$(GO) test ./...

e2e: tools
	cd e2e && $(GO) vet ./... && $(GO) test -count=1 -timeout 20m ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd e2e && $(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@2025.1.1 ./...

## demo: starts loopback registries, seeds a signed sample, saves it and prints inspect
demo: build tools
	cd e2e && $(GO) run ./cmd/demo -airlock $(CURDIR)/$(BIN) -work $(CURDIR)/out/demo

bench: build tools
	@echo "make bench: the benchmark program is not written yet (issue 5)"; exit 1

clean:
	rm -rf bin out

# vigil — run `make help` for the targets.
SHELL := /bin/bash
GO    ?= go
BIN   := bin
VIGIL := $(BIN)/vigil
export CGO_ENABLED := 1

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-z][a-zA-Z_-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

.PHONY: deps
deps: ## Install the Debian packages the build and tests need (idempotent)
	@scripts/deps.sh

.PHONY: build
build: deps ## Build bin/vigil, the C reference supervisor and the test probe
	$(GO) build -o $(VIGIL) ./cmd/vigil
	gcc -O2 -Wall -Wextra -o $(BIN)/refsup scripts/refsup.c
	gcc -O2 -Wall -Wextra -pthread -o $(BIN)/probe enforcer/testdata/probe/probe.c

.PHONY: test
test: build ## Run every test (privileged tests need root; VIGIL_REQUIRE_PRIVILEGED=1 makes their skips fail)
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 30m ./...

.PHONY: bench
bench: build ## Benchmark the open+close loop: bare, C reference supervisor, vigil (two policies)
	@echo "== vigil policy: passthrough (same work as the C reference)"
	VIGIL=$(VIGIL) VIGIL_POLICY=scripts/bench/passthrough.yaml scripts/bench-open.sh
	@echo "== vigil policy: path rule (every open resolved)"
	VIGIL=$(VIGIL) VIGIL_POLICY=scripts/bench/path-rule.yaml scripts/bench-open.sh
	$(GO) test -run '^$$' -bench . -benchtime 2s ./enforcer/policy/ ./enforcer/args/ ./enforcer/resolve/

.PHONY: demo
demo: build ## Run vigil on its embedded default policy: an allowed read, a denied read, audit records
	@scripts/demo.sh $(VIGIL)

.PHONY: kernel-matrix
kernel-matrix: ## Run vigil on Debian's 6.1/6.12 kernels in qemu and on this one; print the matrix (KERNELS=, PASS=light|full)
	@scripts/kernel-matrix.sh

.PHONY: generate
generate: ## Regenerate generated Go code (syscall table, bpf2go objects)
	scripts/gensysnum.sh
	$(GO) generate ./...

.PHONY: vmlinux
vmlinux: deps ## Regenerate bpf/vmlinux.h from this kernel's BTF
	scripts/vmlinux.sh

.PHONY: fmt
fmt: ## Format Go code
	gofmt -w $$(git ls-files '*.go')

.PHONY: lint
lint: ## gofmt check and go vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

.PHONY: clean
clean: ## Remove build output
	rm -rf $(BIN)

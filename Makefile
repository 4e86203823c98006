# vigil — run `make help` for the targets.
SHELL := /bin/bash
GO    ?= go
BIN   := bin
VIGIL := $(BIN)/vigil
export CGO_ENABLED := 1

# Stamped into the binary (vigil version); a tarball's name carries VERSION.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
VPKG    := github.com/vigilsec/vigil/cmd/vigil/internal/version
LDFLAGS := -X $(VPKG).Version=$(VERSION) -X $(VPKG).Commit=$(COMMIT)
# Man pages carry the commit's date, not the build's, so they are reproducible.
export SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || date +%s)
DIST    := vigil-$(VERSION)-linux-amd64
# Tools pinned in their own module (scripts/lint/go.mod) so vigil's
# dependencies stay its own; built from the Go module proxy into bin/ and
# rebuilt when the pins change.
TOOLS         := scripts/lint
GOLANGCI_LINT := $(BIN)/golangci-lint

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-z][a-zA-Z_-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

.PHONY: deps
deps: ## Install the Debian packages the build and tests need (idempotent)
	@scripts/deps.sh

.PHONY: build
build: deps ## Build bin/vigil, the C reference supervisor and the test probe
	$(GO) build -ldflags "$(LDFLAGS)" -o $(VIGIL) ./cmd/vigil
	gcc -O2 -Wall -Wextra -o $(BIN)/refsup scripts/refsup.c
	gcc -O2 -Wall -Wextra -pthread -o $(BIN)/probe enforcer/testdata/probe/probe.c

.PHONY: static
static: deps ## Build bin/vigil-static: libseccomp and libc linked in, runs where neither is installed
	$(GO) build -tags osusergo,netgo -ldflags "$(LDFLAGS) -s -w -linkmode external -extldflags -static" -o $(BIN)/vigil-static ./cmd/vigil
	@! readelf -lW $(BIN)/vigil-static | grep -q 'program interpreter' || { echo "$(BIN)/vigil-static is not static" >&2; exit 1; }

.PHONY: static-check
static-check: static ## Run bin/vigil-static in an empty chroot (no shared libraries at all): version and run -- true
	scripts/static-smoke.sh $(BIN)/vigil-static

.PHONY: man
man: ## Generate man pages (bin/man/man8) and shell completions (bin/completions) from the command tree
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/vigil-docs ./cmd/vigil
	rm -rf $(BIN)/man $(BIN)/completions
	$(BIN)/vigil-docs gen-docs --man $(BIN)/man/man8 --completions $(BIN)/completions
	rm -f $(BIN)/vigil-docs

.PHONY: dist
dist: static man ## Build bin/vigil-VERSION-linux-amd64.tar.gz: static binary, man pages, completions, systemd unit, README
	rm -rf $(BIN)/$(DIST) && mkdir -p $(BIN)/$(DIST)
	install -m 0755 $(BIN)/vigil-static $(BIN)/$(DIST)/vigil
	cp -r $(BIN)/man $(BIN)/completions $(BIN)/$(DIST)/
	install -m 0644 scripts/vigil-agent.service README.md $(BIN)/$(DIST)/
	tar -C $(BIN) --sort=name --owner=0 --group=0 --numeric-owner --mtime=@$(SOURCE_DATE_EPOCH) -czf $(BIN)/$(DIST).tar.gz $(DIST)
	@echo "$(BIN)/$(DIST).tar.gz"

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

.PHONY: debian-container
debian-container: build ## Run a Debian userland (apt-get, dpkg, useradd) in runc, bare and under vigil agent; compare (needs the Debian archive)
	@scripts/debian-container.sh $(VIGIL)

.PHONY: kernel-matrix
kernel-matrix: ## Run vigil on Debian's 6.1/6.12 kernels in qemu and on this one; print the matrix (KERNELS=, PASS=light|full)
	@scripts/kernel-matrix.sh

.PHONY: generate
generate: ## Regenerate generated Go code (syscall table, bpf2go objects, stringer methods)
	scripts/gensysnum.sh
	$(GO) generate ./...

.PHONY: generate-check
generate-check: generate ## Regenerate on a clean tree; fail if the committed generated files differ
	@git diff --exit-code --stat || { echo "make generate changed the files above: commit its output" >&2; exit 1; }
	@test -z "$$(git ls-files --others --exclude-standard)" || { git ls-files --others --exclude-standard; echo "make generate made the files above: commit them" >&2; exit 1; }

.PHONY: vmlinux
vmlinux: deps ## Regenerate bpf/vmlinux.h from this kernel's BTF
	scripts/vmlinux.sh

.PHONY: fmt
fmt: $(GOLANGCI_LINT) ## Format Go code the way make lint checks it (gofmt, goimports)
	$(GOLANGCI_LINT) fmt ./...

.PHONY: lint
lint: $(GOLANGCI_LINT) ## golangci-lint (.golangci.yml: import direction, gofmt/goimports, vet, staticcheck, funlen...), unsafe-file check
	$(GOLANGCI_LINT) run ./...
	$(GO) test -count=1 ./scripts/conventions/

$(GOLANGCI_LINT): $(TOOLS)/go.mod $(TOOLS)/go.sum
	CGO_ENABLED=0 $(GO) -C $(TOOLS) build -o $(CURDIR)/$@ github.com/golangci/golangci-lint/v2/cmd/golangci-lint

.PHONY: clean
clean: ## Remove build output
	rm -rf $(BIN)

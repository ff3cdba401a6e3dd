# gatewayd — build, run, test, package. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null | sed 's/^v//' || echo 0.0.0-dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null)
LDFLAGS := -s -w -X github.com/gatewayd/gatewayd/daemon/buildinfo.Version=$(VERSION) -X github.com/gatewayd/gatewayd/daemon/buildinfo.Commit=$(COMMIT)
BIN := bin

.PHONY: help build run test test-setup lint bench protocol cross fuzz-seeds clean package package-test

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

build: ## build bin/gatewayd and bin/gatewayctl
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/gatewayd ./cmd/gatewayd
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/gatewayctl ./cmd/gatewayctl

run: build ## run gatewayd on 127.0.0.1:18789 with the default profile (token generated on first start)
	$(BIN)/gatewayd $(ARGS)

test-setup: ## install what the tests need (Debian packages as root, nothing else)
	@.ci/setup

test: test-setup lint ## the whole suite: gofmt, vet, staticcheck, unit + integration tests with -race, fuzz seed corpora, darwin cross-builds (CI=true: a skip not on .ci/skip-allowlist fails)
	$(GO) vet -tags faultinject ./daemon/gateway/
	$(GO) build -o $(BIN)/testreport ./internal/testreport
	set -o pipefail; $(GO) test -json -race -count=1 -timeout 30m ./... | $(BIN)/testreport -allowlist .ci/skip-allowlist
	$(GO) test -count=1 -run '^TestSoak$$' -timeout 15m ./daemon/bench/
	$(MAKE) cross

lint: ## gofmt, go vet, staticcheck
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: run gofmt -w on the files above"; exit 1; }
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

bench: build ## print the performance figures (go test -bench against the real binary, and gatewayctl bench)
	@echo "== this machine's floor: raw TCP ping-pong between two processes (compare the health figures with it)"
	$(GO) test -run '^$$' -bench 'LoopbackFloor' -benchtime 3s -timeout 5m ./daemon/bench/
	$(GO) test -run '^$$' -bench 'StartToHelloOK|SocketActivatedColdStart|IdleRSS' -benchtime 10x -timeout 5m ./daemon/bench/
	$(GO) test -run '^$$' -bench 'IdleConnsRSS' -benchtime 1x -timeout 20m ./daemon/bench/
	$(GO) test -run '^$$' -bench 'LoopbackFanoutFloor|PresenceFanout' -benchtime 10x -timeout 20m ./daemon/bench/
	$(GO) test -run '^$$' -bench . -benchtime 3s -timeout 5m ./daemon/openai/
	$(GO) test -run '^$$' -bench . -benchtime 5x -timeout 5m ./daemon/agent/
	@d=$$(mktemp -d); port=$$(( 20000 + RANDOM % 20000 )); \
	GATEWAY_STATE_DIR=$$d GATEWAY_CONFIG_PATH=$$d/config.json $(BIN)/gatewayd --port $$port --token bench-token >$$d/log 2>&1 & pid=$$!; \
	trap 'kill $$pid; wait $$pid; rm -rf $$d' EXIT; \
	for i in $$(seq 50); do $(BIN)/gatewayctl --url ws://127.0.0.1:$$port --token bench-token health >/dev/null 2>&1 && break; sleep 0.1; done; \
	for c in 1 64; do for p in 1 16; do \
	  echo "== gatewayctl bench --conns $$c --pipeline $$p"; \
	  $(BIN)/gatewayctl --url ws://127.0.0.1:$$port --token bench-token bench --conns $$c --pipeline $$p --duration 5s || exit 1; \
	done; done

protocol: ## regenerate daemon/protocol/schema/protocol.schema.json from the Go types
	$(GO) run ./daemon/protocol/internal/gen

cross: ## darwin builds with CGO_ENABLED=0 (arm64, amd64)
	GOOS=darwin GOARCH=arm64 CGO_ENABLED=0 $(GO) build -o /dev/null ./cmd/...
	GOOS=darwin GOARCH=amd64 CGO_ENABLED=0 $(GO) build -o /dev/null ./cmd/...

clean: ## remove build output
	rm -rf $(BIN) dist

package: ## dist/: gatewayd_<v>_<arch>.deb, gatewayd-<v>-1.<arch>.rpm, gatewayd-<v>-{arm64,x86_64}.pkg (version from git describe)
	rm -f dist/gatewayd_*.deb dist/gatewayd-*.rpm dist/gatewayd-*.pkg
	$(GO) run ./packaging/cmd/mkpackage -out dist

package-test: test-setup package ## lintian, rpmlint, scripts, dpkg --root, rpm -qp, pkg readers, hardening, e2e install/upgrade/purge in a booted systemd container
	GATEWAYD_DIST=$(CURDIR)/dist $(GO) test -count=1 -timeout 20m ./packaging/...

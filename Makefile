# cloudmha — make targets. `make test` is what CI runs (through .ci/run).
GO       ?= go
BIN      := bin/cloudmha
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
PKGS     := ./...
# The test bed is one per machine: packages run one at a time (-p 1) so that
# the e2e/integration packages never compete for it. -race: the manager is
# concurrent by nature; a data race is a bug even when a test happens to pass.
TESTFLAGS ?= -race -count=1 -p 1 -timeout 35m
FUZZTIME ?= 20s

.PHONY: build test unit lint fuzz demo demo-down clean bench

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/cloudmha

## test: lint, every test (unit + integration on the real test bed when root), and a short fuzz run
test: lint build
	$(GO) test $(TESTFLAGS) $(PKGS)
	$(MAKE) fuzz

## unit: only the tests that need no root and no servers
unit:
	CLOUDMHA_SKIP_TESTBED=1 $(GO) test -count=1 $(PKGS)

lint:
	@out=$$(gofmt -l cmd internal test); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseMHA$$' -fuzztime $(FUZZTIME) ./internal/config/
	$(GO) test -run '^$$' -fuzz '^FuzzParseYAML$$' -fuzztime $(FUZZTIME) ./internal/config/

## demo: build, bring up the sandbox cluster, check it, say where to go next
demo: build
	./$(BIN) sandbox up --self $(CURDIR)/$(BIN)
	ip netns exec cmha-mgr ./$(BIN) check-repl --conf=/var/tmp/cloudmha-testbed/cmha/app1.cnf
	ip netns exec cmha-mgr ./$(BIN) check-ssh --conf=/var/tmp/cloudmha-testbed/cmha/app1.cnf
	@echo
	@echo "The sandbox is still up. Try: ./$(BIN) sandbox status | ./$(BIN) --help | make demo-down"

demo-down: build
	./$(BIN) sandbox down

## bench: failover/switchover timings and manager cost on the real test bed (root; not part of `make test`).
## Flags through BENCHFLAGS, e.g. make bench BENCHFLAGS="--runs 2 --kinds kill --scale 1,10,100 --keep-logs /tmp/bench"
bench: build
	$(GO) run ./bench/failover --binary=$(CURDIR)/$(BIN) $(BENCHFLAGS)

clean:
	rm -rf bin

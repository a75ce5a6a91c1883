# svcdns: `make run` starts it on 127.0.0.1:5353 (DNS) and 127.0.0.1:8053 (API);
# `make test` runs every test, the integration tests against the real Docker
# engine included (they skip without Docker locally, and fail under CI=true).
GO      ?= go
BIN     := bin/svcdns
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
FUZZTIME ?= 30s
SOAK_DURATION ?= 600

.PHONY: build run test unit integration bench gobench fuzz soak image lint

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/svcdns

run: build
	$(BIN) --dns-addr 127.0.0.1:5353 --http-addr 127.0.0.1:8053

test: lint unit integration

# The fuzz targets' seed corpora (and any crashers kept in testdata/fuzz)
# run here as ordinary tests.
unit:
	$(GO) test -race -count=1 ./...

integration:
	$(GO) test -tags integration -count=1 -timeout 30m ./integration/...

# The side-by-side benchmark: svcdns, CoreDNS and dnsmasq under dnsperf,
# callgrind, Go benchmarks, event -> resolvable; writes BENCHMARKS.md.
bench:
	bench/run.sh

# Go benchmarks only (handler, catalog, watcher), with allocations.
gobench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzServeDNS$$' -fuzztime $(FUZZTIME) ./dnsserver
	$(GO) test -run '^$$' -fuzz '^FuzzEventToInstances$$' -fuzztime $(FUZZTIME) ./watcher
	$(GO) test -run '^$$' -fuzz '^FuzzServiceName$$' -fuzztime $(FUZZTIME) ./watcher
	$(GO) test -run '^$$' -fuzz '^FuzzNormalizeLabel$$' -fuzztime $(FUZZTIME) ./catalog

# A bounded load-and-churn run against the real engine (SOAK_DURATION s).
soak:
	SOAK_DURATION=$(SOAK_DURATION) bench/soak.sh

image: build
	docker build -t svcdns:dev .

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags integration ./integration/...

# svcdns: `make run` starts it on 127.0.0.1:5353 (DNS) and 127.0.0.1:8053 (API);
# `make test` runs every test, the integration tests against the real Docker
# engine included (they skip without Docker locally, and fail under CI=true).
GO      ?= go
BIN     := bin/svcdns
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
FUZZTIME ?= 30s
SOAK_DURATION ?= 600
# staticcheck, pinned, built from the module proxy on first use (no go.mod
# entry: it is a tool of the repository, not a dependency of svcdns).
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build run test deps coredns unit integration bench gobench fuzz soak image lint screenshot demo demo-down diagram

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/svcdns

run: build
	$(BIN) --dns-addr 127.0.0.1:5353 --http-addr 127.0.0.1:8053

test: deps lint unit integration

# The Debian packages the tests use (dig, kdig, haproxy, unbound, …):
# installed when missing and we are root, else one line naming them.
deps:
	@scripts/deps.sh

# The fuzz targets' seed corpora (and any crashers kept in testdata/fuzz)
# run here as ordinary tests.
unit:
	$(GO) test -race -count=1 ./...
	$(GO) test -race -count=1 -tags nommsg ./dnsserver

# CoreDNS (a consumer under test) is built before the tests, never inside
# their timeout: about 2 minutes on a fresh machine, then cached.
integration: deps coredns
	$(GO) test -tags integration -count=1 -timeout 30m ./integration/...

coredns:
	@scripts/coredns.sh >/dev/null

# The side-by-side benchmark: svcdns, CoreDNS and dnsmasq under dnsperf,
# callgrind, Go benchmarks, event -> resolvable; writes BENCHMARKS.md.
bench:
	bench/run.sh

# The cluster figures alone (issue 10): N nodes in one process, and DNS
# with 100,000 peer instances loaded; rewrites their BENCHMARKS.md section.
.PHONY: bench-cluster
bench-cluster:
	bench/cluster.sh

# Go benchmarks only (handler, catalog, watcher), with allocations.
gobench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzServeDNS$$' -fuzztime $(FUZZTIME) ./dnsserver
	$(GO) test -run '^$$' -fuzz '^FuzzEventToInstances$$' -fuzztime $(FUZZTIME) ./watcher
	$(GO) test -run '^$$' -fuzz '^FuzzServiceName$$' -fuzztime $(FUZZTIME) ./watcher
	$(GO) test -run '^$$' -fuzz '^FuzzNormalizeLabel$$' -fuzztime $(FUZZTIME) ./catalog
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./cluster

# A bounded load-and-churn run against the real engine (SOAK_DURATION s).
soak:
	SOAK_DURATION=$(SOAK_DURATION) bench/soak.sh

# The README's dashboard picture: the browser test (chromium, Docker) writes it.
screenshot:
	SVCDNS_SCREENSHOT=$(CURDIR)/docs/dashboard.png $(GO) test -tags integration -count=1 -run '^TestDashboardInBrowser$$' ./integration/

# The README's diagram, from its graphviz source.
diagram:
	dot -Tpng -Gdpi=110 docs/architecture.dot -o docs/architecture.png

# The Compose demo (examples/compose): svcdns, two replicas of books-ms and
# a client that resolves books-ms.service.local SRV and calls each replica.
# The images are FROM scratch static binaries built here: nothing is pulled.
DEMO_DIR     := examples/compose
DEMO_COMPOSE := docker-compose -p svcdns-demo -f $(DEMO_DIR)/docker-compose.yml
DEMO_IMAGES  := svcdns books client

demo:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(DEMO_DIR)/bin/svcdns ./cmd/svcdns
	CGO_ENABLED=0 $(GO) build -trimpath -o $(DEMO_DIR)/bin/books ./$(DEMO_DIR)/books
	CGO_ENABLED=0 $(GO) build -trimpath -o $(DEMO_DIR)/bin/client ./$(DEMO_DIR)/client
	for p in $(DEMO_IMAGES); do docker build -q --build-arg PROG=$$p -t svcdns-demo/$$p:latest $(DEMO_DIR) >/dev/null || exit 1; done
	$(DEMO_COMPOSE) up -d --remove-orphans svcdns books-ms
	$(DEMO_COMPOSE) run --rm client

demo-down:
	-$(DEMO_COMPOSE) down --remove-orphans
	-for p in $(DEMO_IMAGES); do docker rmi -f svcdns-demo/$$p:latest >/dev/null 2>&1; done
	rm -rf $(DEMO_DIR)/bin

image: build
	docker build -t svcdns:dev .

# The file list comes from git: a git that cannot read the checkout (not
# installed, or "dubious ownership" when another user owns the clone) must
# fail here, not leave gofmt reading an empty stdin and passing.
# safe.directory on the command line is honoured (protected config).
# The cross builds only compile: -buildvcs=false, so they need no git (a
# clone owned by another user fails VCS stamping with exit status 128).
lint:
	@files=$$(git -c safe.directory='$(CURDIR)' ls-files '*.go') && [ -n "$$files" ] || { echo "lint: git ls-files found no Go files"; exit 1; }; \
	out=$$(gofmt -l $$files); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags integration ./integration/...
	$(STATICCHECK) -tags integration ./...
	GOOS=darwin $(GO) vet ./...
	GOOS=freebsd $(GO) build -buildvcs=false ./...
	GOOS=windows $(GO) vet ./...
	GOOS=illumos $(GO) build -buildvcs=false ./...

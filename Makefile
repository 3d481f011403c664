# reeve — build, run and test. `make help` lists the targets.

GO        ?= go
PREFIX    ?= /usr/local
DESTDIR   ?=
SYSCONFDIR ?= /etc
UNITDIR   ?= /lib/systemd/system
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
BIN       := bin/reeve
LDFLAGS   := -s -w -X github.com/reeve-edge/reeve/appliance.Version=$(VERSION)

# The shipped binary is always static: no cgo.
export CGO_ENABLED := 0

# The race detector needs cgo in the *test* binary only; the code under test
# is pure Go either way. Without a C compiler the suite runs without -race.
RACE := $(shell command -v gcc >/dev/null 2>&1 && echo -race)
TEST_CGO := $(if $(RACE),1,0)

.PHONY: all build run cluster test lint bench fuzz install clean help interop policies FORCE

all: build

help:
	@echo "make build    static binary in $(BIN) (version $(VERSION))"
	@echo "make run      one-node reeve on embedded defaults, data in ./reeve-data"
	@echo "make cluster  three local nodes on 127.0.0.1-3, logs prefixed by node"
	@echo "make test     the whole test suite (with -race when gcc is present)"
	@echo "make interop  real Kafka clients (kcat, kafka-python) against bin/reeve; installs them from Debian if missing"
	@echo "make lint     go vet, gofmt and the package dependency rule"
	@echo "make bench    Raft commit rate/latency, produce/fetch against kfake, storage appends, idle memory, failover time, election storm"
	@echo "make fuzz     the fuzz targets, FUZZTIME each (default 30s)"
	@echo "make install  binary, sample config, unit file, policy folder (PREFIX, DESTDIR)"
	@echo "make policies the example election policies (wasm/examples) as WebAssembly in bin/policies/"

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) .

# policies builds each Go example policy (each wasm/examples folder with a
# main.go; the interop tests build wasm/examples/c) as a WASI reactor.
POLICIES := $(patsubst wasm/examples/%/main.go,%,$(wildcard wasm/examples/*/main.go))
policies: $(POLICIES:%=bin/policies/%.wasm)

# Go knows best what is stale, so every module goes to go build.
bin/policies/%.wasm: FORCE
	@mkdir -p $(@D)
	GOOS=wasip1 GOARCH=wasm $(GO) build -trimpath -buildmode=c-shared -o $@ ./wasm/examples/$*

FORCE:

run: build
	./$(BIN) serve

# cluster starts three nodes on 127.0.0.1-3 (Kafka :9092, admin :9644 each).
cluster: build
	bash scripts/cluster.sh

test:
	CGO_ENABLED=$(TEST_CGO) $(GO) test $(RACE) -count=1 -timeout 20m ./...

interop:
	bash test/interop/deps.sh
	$(MAKE) build
	bash test/interop/run.sh

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@./.ci/deps-check

bench:
	$(GO) test -run '^$$' -bench BenchmarkCommit -benchtime 3s ./raft/
	$(GO) test -run '^$$' -bench 'BenchmarkIdleRSS|BenchmarkKafka|BenchmarkReplicatedProduce|BenchmarkFailover|BenchmarkElectionStorm' -benchtime 1x -timeout 30m -v ./appliance/ | grep -v '^\s*{'
	$(GO) test -run '^$$' -bench BenchmarkAppend ./kafka/internal/storage/

# fuzz runs each fuzz target for FUZZTIME (a duration, or a count such as
# 200000x); CI runs it with a count (see .ci/run).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRequest$$' -fuzztime $(FUZZTIME) ./kafka/
	$(GO) test -run '^$$' -fuzz '^FuzzLoadConfig$$' -fuzztime $(FUZZTIME) ./config/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeBatch$$' -fuzztime $(FUZZTIME) ./wasm/abi/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeBatch$$' -fuzztime $(FUZZTIME) ./wasm/sdk/

install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/reeve
	install -D -m 0640 systemd/reeve.toml $(DESTDIR)$(SYSCONFDIR)/reeve/reeve.toml
	install -d $(DESTDIR)$(UNITDIR)
	sed -e 's|/usr/local/bin/reeve|$(PREFIX)/bin/reeve|g' -e 's|/etc/reeve/|$(SYSCONFDIR)/reeve/|g' \
		systemd/reeve.service > $(DESTDIR)$(UNITDIR)/reeve.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/reeve.service
	install -d -m 0750 $(DESTDIR)$(SYSCONFDIR)/reeve/policies

clean:
	rm -rf bin reeve-data

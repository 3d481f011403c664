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

.PHONY: all build run cluster test lint bench fuzz chaos install clean help interop policies FORCE

all: build

help:
	@echo "make build    static binary in $(BIN) (version $(VERSION))"
	@echo "make run      one-node reeve on embedded defaults, data in ./reeve-data"
	@echo "make cluster  three local nodes on 127.0.0.1-3, logs prefixed by node"
	@echo "make test     the whole test suite (with -race when gcc is present)"
	@echo "make interop  real Kafka clients (kcat, kafka-python) against bin/reeve; installs them from Debian if missing"
	@echo "make lint     go vet, gofmt and the package dependency rule"
	@echo "make bench    Raft commit rate/latency, produce/fetch against kfake, storage appends, idle memory, failover time, election storm, policy decisions (native vs wasm) and compile time, restart with RESTART_GB (default 10) of partition logs (0 skips)"
	@echo "make fuzz     the fuzz targets, FUZZTIME each (default 30s)"
	@echo "make chaos    CHAOS_FAULTS (default 30) seeded process faults on 3 nodes under load, history checked (CHAOS_SEED, default 1)"
	@echo "make install  binary, systemd unit, sysusers.d and tmpfiles.d snippets, sample $(SYSCONFDIR)/reeve/reeve.toml, policy folder (PREFIX, DESTDIR)"
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

# RESTART_GB is the size of the partition logs BenchmarkRestart writes
# (in a temporary directory, removed after it) and restarts a node on.
RESTART_GB ?= 10
bench:
	$(GO) test -run '^$$' -bench BenchmarkCommit -benchtime 3s ./raft/
	$(GO) test -run '^$$' -bench 'BenchmarkIdleRSS|BenchmarkKafka|BenchmarkReplicatedProduce|BenchmarkFailover|BenchmarkElectionStorm' -benchtime 1x -timeout 30m -v ./appliance/ | grep -v '^\s*{'
	$(GO) test -run '^$$' -bench BenchmarkAppend ./kafka/internal/storage/
	$(GO) test -run '^$$' -bench 'BenchmarkPolicy' -benchtime 2s ./wasm/guesttest/
	REEVE_BENCH_RESTART_GB=$(RESTART_GB) $(GO) test -run '^$$' -bench BenchmarkRestart -benchtime 1x -timeout 30m -v ./appliance/ | grep -v '^\s*{'

# fuzz runs each fuzz target for FUZZTIME (a duration, or a count such as
# 200000x); CI runs it with a count (see .ci/run).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRequest$$' -fuzztime $(FUZZTIME) ./kafka/
# FuzzConnection drives a live server over TCP, a few hundred inputs a
# second: a FUZZTIME count runs it 10000x (about 30 s), a duration as is.
	$(GO) test -run '^$$' -fuzz '^FuzzConnection$$' -fuzztime $(if $(filter %x,$(FUZZTIME)),10000x,$(FUZZTIME)) ./kafka/
	$(GO) test -run '^$$' -fuzz '^FuzzLoadConfig$$' -fuzztime $(FUZZTIME) ./config/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeBatch$$' -fuzztime $(FUZZTIME) ./wasm/abi/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeBatch$$' -fuzztime $(FUZZTIME) ./wasm/sdk/
	$(GO) test -run '^$$' -fuzz '^FuzzInstrument$$' -fuzztime $(FUZZTIME) ./wasm/
	$(GO) test -run '^$$' -fuzz '^FuzzTransportFrame$$' -fuzztime $(FUZZTIME) ./raft/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeProducerSnapshot$$' -fuzztime $(FUZZTIME) ./kafka/

# chaos runs the fault suite's process-fault profile (appliance/chaos_test.go):
# CHAOS_FAULTS faults from the schedule CHAOS_SEED gives, and a summary with
# lost, duplicates and the longest stall per fault kind.
CHAOS_FAULTS ?= 30
CHAOS_SEED ?= 1
chaos:
	REEVE_CHAOS=$(CHAOS_FAULTS) REEVE_CHAOS_SEED=$(CHAOS_SEED) bash -o pipefail -c \
		"$(GO) test -count=1 -run '^TestChaos_processFaults\$$' -v -timeout 60m ./appliance/ | grep -v '^\s*{'"

# install lays reeve out under DESTDIR: the binary in PREFIX/bin; the unit,
# its sysusers.d and tmpfiles.d snippets; the sample configuration (an
# existing reeve.toml is kept, the new sample going beside it as
# reeve.toml.sample) and the policy folder under SYSCONFDIR/reeve. Paths in
# the installed files follow PREFIX and SYSCONFDIR. test/systemd/verify.sh
# checks the layout and the unit.
SEDPATHS := sed -e 's|/usr/local/bin/reeve|$(PREFIX)/bin/reeve|g' -e 's|/etc/reeve|$(SYSCONFDIR)/reeve|g'
install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/reeve
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/reeve
	install -d -m 0750 $(DESTDIR)$(SYSCONFDIR)/reeve/policies
	@conf=$(DESTDIR)$(SYSCONFDIR)/reeve/reeve.toml; \
	if [ -e $$conf ]; then conf=$$conf.sample; echo "keeping $(DESTDIR)$(SYSCONFDIR)/reeve/reeve.toml; the new sample is $$conf"; fi; \
	echo "$(SEDPATHS) systemd/reeve.toml > $$conf"; \
	$(SEDPATHS) systemd/reeve.toml > $$conf && chmod 0640 $$conf
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(PREFIX)/lib/sysusers.d $(DESTDIR)$(PREFIX)/lib/tmpfiles.d
	$(SEDPATHS) systemd/reeve.service > $(DESTDIR)$(UNITDIR)/reeve.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/reeve.service
	install -m 0644 systemd/reeve.sysusers $(DESTDIR)$(PREFIX)/lib/sysusers.d/reeve.conf
	$(SEDPATHS) systemd/reeve.tmpfiles > $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/reeve.conf
	chmod 0644 $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/reeve.conf
	@echo "installed; then: systemd-sysusers reeve.conf && systemd-tmpfiles --create reeve.conf && systemctl daemon-reload && systemctl enable --now reeve"

clean:
	rm -rf bin reeve-data

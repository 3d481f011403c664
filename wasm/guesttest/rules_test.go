package guesttest

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reeve-edge/reeve/config"
	"github.com/reeve-edge/reeve/policy"
	"github.com/reeve-edge/reeve/wasm"
)

// corpus generates partitions in every state a controller may see: 1 to 5
// replicas over 6 nodes, any liveness and ISR membership, every reason,
// with or without a leader, unclean allowed or not.
func corpus(r *rand.Rand, n int) []policy.Input {
	reasons := []policy.Reason{policy.ReasonLeaderTimeout, policy.ReasonControlledShutdown, policy.ReasonRebalance, policy.ReasonManual}
	out := make([]policy.Input, n)
	for i := range out {
		perm := r.Perm(6)
		nr := 1 + r.IntN(5)
		in := policy.Input{Topic: fmt.Sprintf("t%d.x-y_z", r.IntN(50)), Partition: int32(r.IntN(64)),
			Reason: reasons[r.IntN(len(reasons))], Unclean: r.IntN(4) == 0, LeaderEpoch: int32(r.IntN(100))}
		for j := range nr {
			in.Replicas = append(in.Replicas, policy.Replica{ID: uint64(perm[j] + 1), Alive: r.IntN(3) > 0, InISR: r.IntN(3) > 0,
				HeartbeatAge: time.Duration(r.IntN(20000)) * time.Millisecond, LogEndOffset: int64(r.IntN(1000)) - 1,
				Labels: map[string]string{"power": []string{"mains", "battery"}[perm[j]%2]}})
		}
		if r.IntN(5) > 0 {
			in.Leader = in.Replicas[r.IntN(nr)].ID
		}
		if in.Reason == policy.ReasonLeaderTimeout || in.Reason == policy.ReasonControlledShutdown {
			for j := range in.Replicas {
				if in.Replicas[j].ID == in.Leader {
					in.Replicas[j].Alive = false
				}
			}
		}
		out[i] = in
	}
	return out
}

// TestFirstISRModule_decidesAsTheBuiltIn is the differential test: the
// SDK's first-isr example and the native policy agree on every partition
// of a generated corpus, in batches of 1, 100 and 10,000.
func TestFirstISRModule_decidesAsTheBuiltIn(t *testing.T) {
	p := loadGuest(t, "wasm/examples/first-isr", nil)
	r := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	total := 0
	for _, batch := range []int{1, 100, 10000} {
		for round := 0; round < max(1, 2000/batch); round++ {
			in := corpus(r, batch)
			want, _ := policy.FirstISR{}.Decide(ctx, in)
			got, err := p.Decide(ctx, in)
			if err != nil {
				t.Fatalf("batch of %d: %v", batch, err)
			}
			for i := range in {
				if got[i].Keep != want[i].Keep || got[i].Leader != want[i].Leader {
					t.Fatalf("%+v:\nmodule decided %+v, built-in %+v", in[i], got[i], want[i])
				}
			}
			total += len(in)
		}
	}
	t.Logf("%d partitions decided identically", total)
}

// BenchmarkPolicyDecide reports the cost of one partition decision for the
// built-in first-isr, the SDK's first-isr module ("wasm") and the
// prefer-label example (memory cap and
// deadline on, as in production), in batches of 1, 100 and 10,000 of the
// generated corpus, ordered as a controller's batches are.
//
//	go test -run '^$' -bench BenchmarkPolicyDecide ./wasm/guesttest/
func BenchmarkPolicyDecide(b *testing.B) {
	modules := []struct {
		name string
		p    *wasm.Policy
	}{
		{"wasm", loadGuest(b, "wasm/examples/first-isr", nil)},
		{"prefer-label", loadGuest(b, "wasm/examples/prefer-label", map[string]string{"label": "power", "value": "mains"})},
	}
	ctx := context.Background()
	for _, batch := range []int{1, 100, 10000} {
		// Shaped like a controller's batch: Raft lists a group's
		// partitions by topic, then partition.
		in := corpus(rand.New(rand.NewPCG(3, 4)), batch)
		slices.SortStableFunc(in, func(a, b policy.Input) int {
			return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
		})
		b.Run(fmt.Sprintf("native/batch-%d", batch), func(b *testing.B) {
			for b.Loop() {
				policy.FirstISR{}.Decide(ctx, in)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/decision")
		})
		for _, m := range modules {
			b.Run(fmt.Sprintf("%s/batch-%d", m.name, batch), func(b *testing.B) {
				for b.Loop() {
					if _, err := m.p.Decide(ctx, in); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/decision")
			})
		}
	}
}

// BenchmarkPolicyCompile reports the time to compile the SDK's first-isr
// module with no cache (a fresh runtime each time) and from the on-disk
// compilation cache.
//
//	go test -run '^$' -bench BenchmarkPolicyCompile ./wasm/guesttest/
func BenchmarkPolicyCompile(b *testing.B) {
	code := buildGuest(b, "wasm/examples/first-isr")
	ctx := context.Background()
	compile := func(b *testing.B, cacheDir string) {
		rt, err := wasm.NewRuntime(ctx, wasm.Config{CacheDir: cacheDir})
		if err != nil {
			b.Fatal(err)
		}
		defer rt.Close(ctx)
		if _, err := rt.Compile(ctx, "first-isr.wasm", code); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			compile(b, "")
		}
	})
	b.Run("cached", func(b *testing.B) {
		dir := b.TempDir()
		compile(b, dir) // fill the cache
		for b.Loop() {
			compile(b, dir)
		}
	})
}

// testRules makes the rules of a node over a folder with one rule for
// every topic, logging into a buffer the test can read, and loads them.
func testRules(t *testing.T, dir, module string, timeout time.Duration, settings map[string]string) (*policy.Rules, *lockedBuffer) {
	t.Helper()
	e := config.Default().Election
	e.PolicyDir = dir
	e.PolicyTimeout = config.Duration{Duration: timeout}
	buf := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(buf, nil))
	wc := wasm.ElectionConfig(e)
	// The node's compilation cache, shared by the tests and warmed by the
	// reeve binary (guests_test.go): a module swapped back in compiles from
	// it (without it, 50 swaps are 50 cold compiles, minutes under -race).
	wc.Logger, wc.CacheDir = log, guestCacheDir(t)
	ctx := context.Background()
	rt, err := wasm.NewRuntime(ctx, wc)
	if err != nil {
		t.Fatal(err)
	}
	rules := []policy.Rule{{Topics: "*", Policy: module, Settings: settings}}
	pr := policy.NewRules(rules, wasm.NewModules(rt, dir, t.TempDir()), timeout, log)
	t.Cleanup(func() { pr.Close(ctx); rt.Close(ctx) })
	pr.Reload(ctx)
	return pr, buf
}

// fellBack counts the decisions the controller would hand to first-isr
// because the rule's module failed, and returns the first such error.
func fellBack(ds []policy.Decision) (int, error) {
	n, first := 0, error(nil)
	for _, d := range ds {
		if d.Err != nil {
			n++
			first = cmp.Or(first, d.Err)
		}
	}
	return n, first
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// writeAtomically replaces a file the way an operator's deploy should (and
// as most tools do): a new file renamed over the old.
func writeAtomically(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestPolicyRules_hotReloadUnderLoad swaps the module behind a rule 50
// times while elections run without pause: every round is decided by one
// whole module (never a mix, never a half-loaded one), none falls back to
// first-isr, and every swap takes effect.
func TestPolicyRules_hotReloadUnderLoad(t *testing.T) {
	firstISR, leastLag := buildGuest(t, "wasm/examples/first-isr"), buildGuest(t, "wasm/examples/least-lag")
	refFirst, refLag := loadGuest(t, "wasm/examples/first-isr", nil), loadGuest(t, "wasm/examples/least-lag", nil)
	dir := t.TempDir()
	writeAtomically(t, filepath.Join(dir, "p.wasm"), firstISR)
	pr, logs := testRules(t, dir, "p.wasm", 2*time.Second, nil)
	if got := pr.Info().Loaded; got != 1 {
		t.Fatalf("first load: %d modules loaded; log:\n%s", got, logs)
	}
	ctx := context.Background()
	stop := make(chan struct{})
	errs := make(chan error, 1)
	var rounds, byFirst, byLag, fallbacks int
	go func() {
		defer close(errs)
		r := rand.New(rand.NewPCG(5, 6))
		for {
			select {
			case <-stop:
				return
			default:
			}
			in := corpus(r, 100)
			got, _ := pr.Decide(ctx, in)
			a, errA := refFirst.Decide(ctx, in)
			b, errB := refLag.Decide(ctx, in)
			if errA != nil || errB != nil {
				errs <- fmt.Errorf("reference policies: %v %v", errA, errB)
				return
			}
			same := func(x []policy.Decision) bool {
				for i := range got {
					if got[i].Keep != x[i].Keep || got[i].Leader != x[i].Leader {
						return false
					}
				}
				return true
			}
			if n, err := fellBack(got); n > 0 {
				fallbacks += n
				errs <- fmt.Errorf("round %d: %d partitions not decided by the module: %v", rounds, n, err)
				return
			}
			for i := range got {
				if got[i].Source.Policy != "p.wasm" {
					errs <- fmt.Errorf("round %d: partition %d decided by %q, want p.wasm", rounds, i, got[i].Source.Policy)
					return
				}
			}
			switch {
			case same(a):
				byFirst++
			case same(b):
				byLag++
			default:
				errs <- fmt.Errorf("round %d: the decisions match neither module: a mix or a half-loaded module", rounds)
				return
			}
			rounds++
		}
	}()
	for i := range 50 {
		code := leastLag
		if i%2 == 1 {
			code = firstISR
		}
		writeAtomically(t, filepath.Join(dir, "p.wasm"), code)
		pr.Reload(ctx)
		if got := pr.Info().Loaded; got != int64(i+2) {
			t.Fatalf("swap %d: %d modules loaded, want %d; log:\n%s", i, got, i+2, logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if fallbacks != 0 || pr.Info().Refused != 0 {
		t.Errorf("%d fallbacks, %d refusals during the swaps; log:\n%s", fallbacks, pr.Info().Refused, logs)
	}
	t.Logf("%d rounds during 50 swaps: %d by first-isr, %d by least-lag", rounds, byFirst, byLag)
}

// TestPolicyRules_hostileModules loads each hostile module behind a rule
// and runs an election round: the round always completes within the
// deadline, a module that fails answers its partitions with an error the
// controller hands to first-isr, and the log or the error names the
// policy and why it failed. Modules that choose unsafe leaders fail their
// self-test, which Validate checks every answer of.
func TestPolicyRules_hostileModules(t *testing.T) {
	// Modules that fail by running too long get the default 50 ms deadline;
	// the others a second, so that on a loaded machine a Go guest's start
	// (its runtime's initialisation, allowed 4 deadlines) is not what
	// refuses them in place of the check under test.
	const deadlineTimeout, otherTimeout = 50 * time.Millisecond, time.Second
	for _, tc := range []struct {
		name     string
		module   string
		settings map[string]string
		// runsLong: the module fails by exceeding its deadline.
		runsLong bool
		// loadLog is in the log when the module is refused at load; ""
		// when it loads and misbehaves only in its answers.
		loadLog string
		// decideLog is in the log after a round, for modules that load.
		decideLog string
	}{
		{module: "loop", loadLog: "deadline", runsLong: true},
		{module: "grow", loadLog: "trapped|deadline", runsLong: true}, // out of memory, or the deadline first on a slow machine
		{module: "trap", loadLog: "trapped"},
		{module: "forbidden-import", loadLog: "may not use"},
		{module: "wrong-abi", loadLog: "speaks policy ABI 1"},
		{module: "garbage", loadLog: "bad answer"},
		{module: "outside-isr", loadLog: "self-test.*not in the ISR|self-test.*none:|self-test.*keep:"},
		{module: "dead-node", loadLog: "self-test.*not alive|self-test.*none:|self-test.*keep:"},
		// later behaves on batches of topics named reeve*, which is how reeve's
		// fixed self-test batch looked: the batches sampled from the rule's
		// shape catch it.
		{name: "loop-later", module: "later", settings: map[string]string{"mode": "loop"}, loadLog: "self-test", runsLong: true},
		{name: "trap-later", module: "later", settings: map[string]string{"mode": "trap"}, loadLog: "self-test"},
	} {
		name := cmp.Or(tc.name, tc.module)
		timeout := otherTimeout
		if tc.runsLong {
			timeout = deadlineTimeout
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeAtomically(t, filepath.Join(dir, tc.module+".wasm"), buildGuest(t, "wasm/testdata/hostile/"+tc.module))
			pr, logs := testRules(t, dir, tc.module+".wasm", timeout, tc.settings)
			if tc.loadLog != "" {
				if pr.Info().Loaded != 0 || !regexp.MustCompile(tc.loadLog).MatchString(logs.String()) || !strings.Contains(logs.String(), tc.module+".wasm") {
					t.Fatalf("want %s refused at load with %q in the log; loaded %d; log:\n%s", tc.module, tc.loadLog, pr.Info().Loaded, logs)
				}
			} else if pr.Info().Loaded != 1 {
				t.Fatalf("want %s loaded; log:\n%s", tc.module, logs)
			}
			in := corpus(rand.New(rand.NewPCG(7, 8)), 200)
			var fallbacks int
			var why error
			for round := range 3 { // a module that failed is replaced by a fresh instance each round
				start := time.Now()
				ds, err := pr.Decide(context.Background(), in)
				took := time.Since(start)
				if err != nil || len(ds) != len(in) {
					t.Fatalf("round %d: Decide = %d decisions, %v", round, len(ds), err)
				}
				// The bound is the short deadline's whatever the module's:
				// a round never waits long for a module that failed.
				if took > deadlineTimeout+500*time.Millisecond {
					t.Errorf("round %d took %v; the bound is %v", round, took, deadlineTimeout+500*time.Millisecond)
				}
				n, err := fellBack(ds)
				fallbacks += n
				why = cmp.Or(why, err)
				for i, d := range ds {
					if d.Err == nil && policy.Validate(in[i], d) != nil && tc.loadLog != "" {
						t.Errorf("round %d: partition %d: first-isr stands in for a refused module, yet %+v fails the safety check", round, i, d)
					}
				}
			}
			if tc.decideLog != "" && (fallbacks == 0 || !strings.Contains(why.Error(), tc.decideLog)) {
				t.Errorf("want a fallback with %q in its error; %d fallbacks (%v); log:\n%s", tc.decideLog, fallbacks, why, logs)
			}
		})
	}
}

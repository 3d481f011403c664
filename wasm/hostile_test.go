package wasm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reeve-edge/reeve/policy"
	"github.com/reeve-edge/reeve/wasm/abi"
)

// The modules in testdata/hostile-wat are policies written to hurt the
// node that loads them: each has its WebAssembly text beside it, assembled
// with wabt's wat2wasm, and says in its header what it does. The two too
// big to commit are written at test time by testdata/hostile-wat/big.

// hostileTimeout is the deadline the hostile modules run under: the
// default election.policy_timeout.
const hostileTimeout = 50 * time.Millisecond

// hostileSlack is how far past its bound a call may return on a loaded
// machine: the deadline is checked every megabyte of code, two cores are
// shared with other tests, and unwinding a trapped call runs Go code that
// the race detector slows four to ten times.
var hostileSlack = 50 * time.Millisecond

func init() {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" && s.Value == "true" {
				hostileSlack *= 4
			}
		}
	}
}

// hostileGrowth bounds how much a module may grow the process's peak RSS,
// from reading it to its last call: far above what a policy needs (16 MiB
// of memory, a 1 MiB stack), far below what the unbounded modules took
// (1 to 32 GiB).
const hostileGrowth = 64 << 20

type hostileCase struct {
	name string
	// big, if set, are testdata/hostile-wat/big's arguments for the
	// module; otherwise it is name.wasm in testdata/hostile-wat.
	big      []string
	settings []abi.Label
	// refusedAt is where the module is refused: "read" (ReadModule),
	// "compile", "instantiate", or "" for a module that loads.
	refusedAt string
	// want are words of the refusal (besides the module's name).
	want []string
}

var hostileCases = []hostileCase{
	{name: "table-grow-start", refusedAt: "instantiate", want: []string{"unreachable"}}, // table.grow answered -1
	{name: "table-grow-decide", refusedAt: "instantiate", want: []string{"self-test", "unreachable"}},
	{name: "table-huge", refusedAt: "compile", want: []string{"election.policy_max_table_elements"}},
	{name: "tables-many", refusedAt: "compile", want: []string{"election.policy_max_table_elements"}},
	{name: "recursion", refusedAt: "instantiate", want: []string{"self-test", "call stack", "election.policy_max_stack_kib"}},
	{name: "recursion-locals", refusedAt: "instantiate", want: []string{"self-test", "call stack", "election.policy_max_stack_kib"}},
	{name: "keep", refusedAt: "instantiate", want: []string{"self-test", "keep"}},
	{name: "none", refusedAt: "instantiate", want: []string{"self-test", "none"}},
	// selftest-cheat answers the fixed batch well: a sampled one refuses it.
	{name: "selftest-cheat", refusedAt: "instantiate", want: []string{"self-test", "sampled batch"}},
	// sleeper answers well for a second: no self-test can refuse it (the
	// controller's check of every answer is what stops it).
	{name: "sleeper"},
	{name: "first-isr"}, // the control
	{name: "function-1100k", big: []string{"-functions", "1", "-function-kib", "1100"},
		refusedAt: "compile", want: []string{"election.policy_max_function_kib"}},
	{name: "module-50m", big: []string{"-functions", "64", "-function-kib", "800"},
		refusedAt: "read", want: []string{"election.policy_max_module_mib"}},
}

// hostileChild is set in the environment of the process a case runs in.
const hostileChild = "REEVE_TEST_HOSTILE_CHILD"

// TestHostileModules loads each hostile module through
// NewRuntime/ReadModule/Compile/Instantiate (and Decide when it loads) in
// a process of its own, so that a module that kills the Go runtime fails
// its case, not the package, and its RSS is its own. The process must
// exit normally; within it, the module is refused with an error that names
// it and the bound it broke, every step returns within its deadline (or
// promptly, for refusals before any code runs), and the peak RSS grows by
// under 64 MiB.
func TestHostileModules(t *testing.T) {
	child := os.Getenv(hostileChild) != ""
	var bigDir string
	if !child {
		bigDir = t.TempDir()
	}
	for _, tc := range hostileCases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join("testdata", "hostile-wat", tc.name+".wasm")
			if tc.big != nil {
				if child {
					path = os.Getenv(hostileChild)
				} else {
					path = filepath.Join(bigDir, tc.name+".wasm")
					writeBigModule(t, path, tc.big...)
				}
			}
			if child {
				runHostile(t, tc, path)
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHostileModules$/^"+tc.name+"$", "-test.count=1", "-test.v")
			// Without its race detector's second's sleep at exit.
			cmd.Env = append(append([]string{"GORACE=atexit_sleep_ms=0"}, os.Environ()...), hostileChild+"="+path)
			out, err := cmd.CombinedOutput()
			text := string(out)
			switch {
			case err != nil && (strings.Contains(text, "fatal error") || strings.Contains(text, "panic:") || cmd.ProcessState.ExitCode() < 0):
				t.Fatalf("%s crashed the process (%v):\n%s", tc.name, err, crash(text))
			case err != nil || !strings.Contains(text, "--- PASS: TestHostileModules/"+tc.name):
				t.Fatalf("%s (%v):\n%s", tc.name, err, lastBytes(text, 3000))
			}
			t.Log(lastLine(text, "hostile "+tc.name+":"))
		})
	}
}

// runHostile is one case, in its own process.
func runHostile(t *testing.T, tc hostileCase, path string) {
	ctx := context.Background()
	rt, err := NewRuntime(ctx, Config{Timeout: hostileTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	name := tc.name + ".wasm"
	base := peakRSS(t)
	stats := []string{}
	defer func() {
		t.Logf("hostile %s: %s; peak RSS grew %d KiB", tc.name, strings.Join(stats, ", "), (peakRSS(t)-base)>>10)
	}()
	step := func(what string, bound time.Duration, f func() error) error {
		t.Helper()
		start := time.Now()
		err := f()
		took := time.Since(start)
		stats = append(stats, what+" "+took.Round(time.Millisecond/10).String())
		if took > bound+hostileSlack {
			t.Errorf("%s took %v; want at most %v", what, took, bound)
		}
		if growth := peakRSS(t) - base; growth > hostileGrowth {
			t.Errorf("after %s the peak RSS grew by %d MiB; want under %d MiB", what, growth>>20, hostileGrowth>>20)
		}
		refused := tc.refusedAt == what || (tc.refusedAt == "read" && what == "compile")
		switch {
		case refused && err == nil:
			t.Fatalf("%s of %s succeeded; want it refused (%s)", what, name, strings.Join(tc.want, ", "))
		case refused:
			if !errors.Is(err, ErrRefused) {
				t.Errorf("%s: error %q does not wrap ErrRefused", what, err)
			}
			for _, w := range append([]string{name}, tc.want...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: error %q does not say %q", what, err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("%s: error %q is more than one line", what, err)
			}
			t.Logf("%s: %v", what, err)
		case err != nil:
			t.Fatalf("%s of %s: %v", what, name, err)
		}
		return err
	}

	var code []byte
	// ReadModule reads no further than the bound, whatever the size: a
	// promptly refused read is one that did not read 50 MB.
	if step("read", 200*time.Millisecond, func() (err error) {
		code, err = rt.ReadModule(path)
		return err
	}) != nil {
		// Compile refuses the bytes too, from a caller that read them.
		if code, err = os.ReadFile(path); err != nil {
			t.Fatal(err)
		}
		base = peakRSS(t)
	}
	var m *Module
	// Refusals come before the compiler runs; compiling a small module
	// takes milliseconds.
	if step("compile", time.Second, func() (err error) {
		m, err = rt.Compile(ctx, filepath.Base(path), code)
		return err
	}) != nil {
		return
	}
	defer m.Close(ctx)
	// Instantiate runs the start function and the self-test: a module
	// that fails does so in its first call, within one deadline.
	bound := hostileTimeout
	if tc.refusedAt == "" {
		bound = 20 * hostileTimeout // a module that loads answers every self-test batch, each within the deadline
	}
	var p *Policy
	if step("instantiate", bound, func() (err error) {
		p, err = m.Instantiate(ctx, tc.settings, policy.Shape{})
		return err
	}) != nil {
		return
	}
	defer p.Close(ctx)
	r := rand.New(rand.NewPCG(11, 12))
	for round := range 3 {
		b := randomBatch(r, 200)
		var ds []abi.Decision
		step("decide", hostileTimeout, func() (err error) {
			ds, err = p.DecideBatch(ctx, b)
			return err
		})
		if tc.name == "first-isr" || tc.name == "sleeper" { // the sleeper is first-isr for its first second
			for i, d := range ds {
				if want := wantFirstISR(b, b.Partitions[i]); d.Kind != want.Kind || d.Leader != want.Leader {
					t.Fatalf("round %d: partition %d (%+v): decided %+v, want %+v", round, i, b.Partitions[i], d, want)
				}
			}
		}
	}
}

// wantFirstISR is what first-isr.wat decides for p: the first replica alive
// and in the ISR (kept if it leads), else with unclean election the first
// alive one, else none.
func wantFirstISR(b *abi.Batch, p abi.Partition) abi.Decision {
	var isr, alive uint64
	for _, r := range p.Replicas {
		id := b.Nodes[r.Node].ID
		if r.Alive && r.InISR && isr == 0 {
			isr = id
		}
		if r.Alive && alive == 0 {
			alive = id
		}
	}
	switch {
	case isr != 0 && isr == p.Leader:
		return abi.Decision{Kind: abi.DecideKeep}
	case isr != 0:
		return abi.Decision{Kind: abi.DecideLeader, Leader: isr}
	case p.Unclean && alive != 0:
		return abi.Decision{Kind: abi.DecideLeader, Leader: alive}
	}
	return abi.Decision{Kind: abi.DecideNone}
}

// randomBatch makes n partitions in any state a controller may ask about:
// 1 to 5 replicas of 6 labelled nodes, any liveness and ISR, every
// reason, with or without a leader (never alive in a leader_timeout or
// controlled_shutdown round).
func randomBatch(r *rand.Rand, n int) *abi.Batch {
	b := &abi.Batch{}
	for i := range 6 {
		b.Nodes = append(b.Nodes, abi.Node{ID: uint64(i + 1), HeartbeatAgeMs: uint32(r.IntN(20000)),
			Labels: []abi.Label{{Key: "zone", Value: "z" + strconv.Itoa(i%3)}}})
	}
	for i := range n {
		reason := abi.Reason(r.IntN(4))
		p := abi.Partition{Topic: "t" + strconv.Itoa(r.IntN(20)), Partition: int32(i), Reason: reason,
			Unclean: r.IntN(4) == 0, LeaderEpoch: int32(r.IntN(100))}
		perm := r.Perm(6)
		for j := range 1 + r.IntN(5) {
			p.Replicas = append(p.Replicas, abi.Replica{Node: uint32(perm[j]), Alive: r.IntN(3) > 0, InISR: r.IntN(3) > 0,
				LogEndOffset: int64(r.IntN(1000)) - 1})
		}
		if r.IntN(5) > 0 {
			k := r.IntN(len(p.Replicas))
			p.Leader = b.Nodes[p.Replicas[k].Node].ID
			if reason == abi.ReasonLeaderTimeout || reason == abi.ReasonControlledShutdown {
				p.Replicas[k].Alive = false
			}
		}
		b.Partitions = append(b.Partitions, p)
	}
	return b
}

// writeBigModule runs testdata/hostile-wat/big, which streams the module
// to path (it never holds it in memory).
func writeBigModule(t *testing.T, path string, args ...string) {
	t.Helper()
	cmd := exec.Command("go", append(append([]string{"run", "./testdata/hostile-wat/big"}, args...), "-o", path)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testdata/hostile-wat/big %v: %v\n%s", args, err, out)
	}
}

// peakRSS is the process's peak resident set (VmHWM) in bytes.
func peakRSS(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// crash is the start of a crashed process's output from its "fatal
// error" or "panic:", without most of the goroutine dump.
func crash(out string) string {
	i := strings.Index(out, "fatal error")
	if j := strings.Index(out, "panic:"); i < 0 || (j >= 0 && j < i) {
		i = j
	}
	i = max(i, 0)
	return out[i:min(len(out), i+1500)]
}

func lastBytes(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// lastLine returns the last line of out holding prefix, from there on.
func lastLine(out, prefix string) string {
	i := strings.LastIndex(out, prefix)
	if i < 0 {
		return ""
	}
	line, _, _ := strings.Cut(out[i:], "\n")
	return line
}

// TestHostileModules_assembled checks that each committed .wasm in
// testdata/hostile-wat is what wat2wasm makes of the .wat beside it.
func TestHostileModules_assembled(t *testing.T) {
	if _, err := exec.LookPath("wat2wasm"); err != nil {
		t.Skip("wat2wasm (wabt) is not installed")
	}
	srcs, err := filepath.Glob(filepath.Join("testdata", "hostile-wat", "*.wat"))
	if err != nil || len(srcs) == 0 {
		t.Fatalf("no .wat files: %v", err)
	}
	for _, src := range srcs {
		out := filepath.Join(t.TempDir(), "out.wasm")
		if msg, err := exec.Command("wat2wasm", src, "-o", out).CombinedOutput(); err != nil {
			t.Fatalf("wat2wasm %s: %v\n%s", src, err, msg)
		}
		want, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(strings.TrimSuffix(src, ".wat") + ".wasm")
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is not what wat2wasm makes of %s (%v); regenerate it", strings.TrimSuffix(src, ".wat")+".wasm", src, err)
		}
	}
}

package appliance_test

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reeve-edge/reeve/api"
)

// hostileRule is one [[election.rules]] entry of the hostile cluster: a
// topic of its own for one module.
type hostileRule struct {
	topic, module, settings string
	// running: the module loads (the others are refused at load and
	// first-isr decides their topics).
	running bool
	// cause is the fallback cause the decision log gives when first-isr
	// decides in the module's place.
	cause string
}

// TestPolicy_hostileModulesCannotBreakACluster runs a 3-node cluster with
// every hostile module in its policy folder, each behind a rule of its own
// topic (3 partitions, replication factor 3), and besides them a 51 MB
// module no rule names, replaced by another while the cluster runs. Every
// node stays up with a peak RSS under 256 MB, GET /v1/policies answers
// within a second throughout, and only the modules that behave at load
// run. Then the node leading the most partitions is killed: every
// partition of every topic has a live in-sync leader within
// leader_timeout + 1 s, and the decision log shows first-isr deciding in
// place of the sleeper, which answers keep or none by then, with the
// cause.
func TestPolicy_hostileModulesCannotBreakACluster(t *testing.T) {
	pdir, staging := t.TempDir(), t.TempDir()
	rules := []hostileRule{
		{module: "first-isr.wasm", running: true},
		{topic: "h-sleeper-keep", module: "sleeper.wasm", settings: `{ answer = "keep" }`, running: true, cause: "invalid_keep"},
		{topic: "h-sleeper-none", module: "sleeper.wasm", settings: `{ answer = "none" }`, running: true, cause: "invalid_none"},
	}
	for _, m := range hostileRefused {
		if m != "module-50m.wasm" { // in the folder, named by no rule
			rules = append(rules, hostileRule{module: m, cause: "not_loaded"})
		}
	}
	cfg := append(append([]string{}, electionConfig...), fmt.Sprintf("policy_dir = %q", pdir))
	for i, r := range rules {
		if r.topic == "" {
			rules[i].topic = "h-" + strings.TrimSuffix(r.module, ".wasm")
		}
		cfg = append(cfg, "[[election.rules]]", fmt.Sprintf("topics = %q", rules[i].topic), fmt.Sprintf("policy = %q", r.module))
		if r.settings != "" {
			cfg = append(cfg, "settings = "+r.settings)
		}
	}
	for _, m := range append([]string{"first-isr.wasm", "sleeper.wasm"}, hostileRefused...) {
		src := hostileModule(t, staging, m)
		code, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pdir, m), code, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	procs := newProcCluster(t, 3, cfg...)
	watch := watchNodes(t, procs)
	defer watch.stop()

	// Another 51 MB module where the big one was: each node's folder scan
	// (every 2 s) meets it while GET /v1/policies is being polled.
	if err := os.Rename(hostileModule(t, staging, "module-50m.wasm", "1"), filepath.Join(pdir, "module-50m.wasm")); err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		createTopic(t, procs, r.topic, 3, 3)
	}
	for _, r := range rules {
		waitFullISR(t, procs[0], r.topic, 3, 30*time.Second, true)
	}
	for _, p := range procs {
		var pol api.Policies // GET /v1/policies carries it, and a fallback count
		if _, err := httpGetJSON("http://"+p.admin+"/v1/policies", &pol); err != nil || len(pol.Rules) != len(rules) {
			t.Fatalf("node %d: GET /v1/policies = %+v, %v", p.id, pol, err)
		}
		for i, r := range pol.Rules {
			if r.Running != rules[i].running || (!r.Running && r.Error == "") {
				t.Errorf("node %d: rule %s (%s): running %v, last_error %q; want running %v, and an error if not",
					p.id, r.Topics, r.Policy, r.Running, r.Error, rules[i].running)
			}
		}
	}

	// The node leading the most partitions leads at least one of every
	// topic, so that every rule decides after it dies.
	leads := map[uint64]int{}
	views := map[string][]partitionView{}
	for _, r := range rules {
		vs, err := partitionViews(procs[0], r.topic, true)
		if err != nil {
			t.Fatal(err)
		}
		views[r.topic] = vs
		for _, v := range vs {
			leads[v.Leader]++
		}
	}
	victim := procs[0]
	for _, p := range procs {
		if leads[uint64(p.id)] > leads[uint64(victim.id)] {
			victim = p
		}
	}
	for _, r := range rules {
		if !slices.ContainsFunc(views[r.topic], func(v partitionView) bool { return v.Leader == uint64(victim.id) }) {
			moveLeader(t, procs[0], r.topic, 0, uint64(victim.id))
		}
	}
	// A moved partition's followers catch up with its new leader before
	// the kill, or it would rightly go offline; and the sleeper wakes a
	// second after its self-test at load.
	for _, r := range rules {
		waitFullISR(t, procs[0], r.topic, 3, 30*time.Second, true)
	}
	time.Sleep(time.Until(watch.started.Add(1200 * time.Millisecond)))
	led := map[string][]int{} // the victim's partitions, by topic
	for _, r := range rules {
		vs, err := partitionViews(procs[0], r.topic, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			if v.Leader == uint64(victim.id) {
				led[r.topic] = append(led[r.topic], int(v.Partition))
			}
		}
	}

	watch.killed(victim)
	victim.kill(t, syscall.SIGKILL)
	killed := time.Now()
	var survivors []*proc
	for _, p := range procs {
		if p != victim {
			survivors = append(survivors, p)
		}
	}
	for {
		pending := ""
		for _, r := range rules {
			vs, err := partitionViews(survivors[0], r.topic)
			if err != nil || len(vs) != 3 {
				pending = fmt.Sprintf("%s: %d partitions, %v", r.topic, len(vs), err)
				break
			}
			for _, v := range vs {
				if v.Leader == 0 || v.Leader == uint64(victim.id) || !slices.Contains(v.ISR, v.Leader) {
					pending = fmt.Sprintf("%s-%d: leader %d, ISR %v", r.topic, v.Partition, v.Leader, v.ISR)
				}
			}
		}
		if pending == "" {
			break
		}
		if time.Since(killed) > testLeaderTimeout+time.Second {
			t.Fatalf("%v after node %d was killed, %s; want a live in-sync leader for every partition within %v",
				time.Since(killed).Round(time.Millisecond), victim.id, pending, testLeaderTimeout+time.Second)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("node %d (leading %d partitions) killed: every partition led again after %v", victim.id, leads[uint64(victim.id)],
		time.Since(killed).Round(time.Millisecond))

	// Each partition the victim led was decided by its rule's module if it
	// loaded and behaved, and otherwise by first-isr, with the cause.
	for _, r := range rules {
		for _, part := range led[r.topic] {
			var rec *api.Election
			for deadline := time.Now().Add(5 * time.Second); rec == nil && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				for _, p := range survivors {
					for _, e := range decisionLog(p) {
						if e.Topic == r.topic && int(e.Partition) == part && e.From == uint64(victim.id) && e.To != 0 && e.Committed {
							rec = &e
						}
					}
				}
			}
			if rec != nil {
				t.Logf("%s-%d: %s, in place of %q (%s)", r.topic, part, rec.Policy, rec.FallbackFrom, rec.FallbackCause)
			}
			switch {
			case rec == nil:
				t.Errorf("%s-%d: no decision-log record of its failover", r.topic, part)
			case r.cause == "" && rec.Policy != r.module:
				t.Errorf("%s-%d: decided by %q (%s %s); want %s", r.topic, part, rec.Policy, rec.FallbackCause, rec.FallbackError, r.module)
			case r.cause != "" && (rec.Policy != "first-isr" || rec.FallbackFrom != r.module || string(rec.FallbackCause) != r.cause):
				t.Errorf("%s-%d: decided by %q in place of %q, cause %q (%s); want first-isr in place of %s, cause %s",
					r.topic, part, rec.Policy, rec.FallbackFrom, rec.FallbackCause, rec.FallbackError, r.module, r.cause)
			}
		}
	}
	watch.stop()
	watch.check(t)
	for _, p := range procs {
		b, _ := os.ReadFile(p.logPath)
		for _, bad := range []string{"fatal error", "panic:", "goroutine "} {
			if strings.Contains(string(b), bad) {
				t.Errorf("node %d's log has %q", p.id, bad)
			}
		}
	}
}

// nodeWatch samples each node's memory and GET /v1/policies until stopped.
type nodeWatch struct {
	started time.Time
	procs   []*proc
	done    chan struct{}
	wg      sync.WaitGroup

	mu       sync.Mutex
	gone     map[int]bool   // killed by the test
	died     map[int]string // found dead otherwise
	peak     map[int]int64  // VmHWM, bytes
	slowest  map[int]time.Duration
	failures map[int]string // the last failed GET /v1/policies
	polls    int
	stopOnce sync.Once
}

// watchNodes starts sampling, every 100 ms, each node's peak RSS (VmHWM,
// which includes what the node took before the test could look) and
// whether it is alive, and timing GET /v1/policies on each.
func watchNodes(t *testing.T, procs []*proc) *nodeWatch {
	w := &nodeWatch{started: time.Now(), procs: procs, done: make(chan struct{}), gone: map[int]bool{}, died: map[int]string{},
		peak: map[int]int64{}, slowest: map[int]time.Duration{}, failures: map[int]string{}}
	client := &http.Client{Timeout: 5 * time.Second}
	for _, p := range procs {
		pid := p.cmd.Process.Pid
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				w.mu.Lock()
				gone := w.gone[p.id]
				w.mu.Unlock()
				if !gone {
					hwm, state := procStatus(pid)
					start := time.Now()
					resp, err := client.Get("http://" + p.admin + "/v1/policies")
					took := time.Since(start)
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							err = fmt.Errorf("HTTP %s", resp.Status)
						}
					}
					w.mu.Lock()
					if !w.gone[p.id] {
						w.peak[p.id] = max(w.peak[p.id], hwm)
						if state == "" || state[0] == 'Z' {
							w.died[p.id] = fmt.Sprintf("state %q at %v", state, time.Since(w.started).Round(time.Millisecond))
						}
						w.slowest[p.id] = max(w.slowest[p.id], took)
						if err != nil {
							w.failures[p.id] = err.Error()
						}
						w.polls++
					}
					w.mu.Unlock()
				}
				select {
				case <-w.done:
					return
				case <-tick.C:
				}
			}
		}()
	}
	return w
}

// killed tells the watch a node is about to be killed on purpose.
func (w *nodeWatch) killed(p *proc) {
	w.mu.Lock()
	w.gone[p.id] = true
	w.mu.Unlock()
}

func (w *nodeWatch) stop() {
	w.stopOnce.Do(func() { close(w.done) })
	w.wg.Wait()
}

// check fails t for a node that died, took 256 MB or more, or answered a
// GET /v1/policies slowly (a second or more) or not at all.
func (w *nodeWatch) check(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range w.procs {
		if d, ok := w.died[p.id]; ok {
			t.Errorf("node %d died: %s", p.id, d)
		}
		if w.peak[p.id] >= 256<<20 {
			t.Errorf("node %d: peak RSS %d MB; want under 256 MB", p.id, w.peak[p.id]>>20)
		}
		if w.slowest[p.id] >= time.Second {
			t.Errorf("node %d: GET /v1/policies took %v; want under 1 s", p.id, w.slowest[p.id])
		}
		if f, ok := w.failures[p.id]; ok {
			t.Errorf("node %d: GET /v1/policies failed: %s", p.id, f)
		}
	}
	t.Logf("%d polls; peak RSS by node %v MB; slowest GET /v1/policies by node %v", w.polls, mapMB(w.peak), w.slowest)
}

func mapMB(m map[int]int64) map[int]int64 {
	out := map[int]int64{}
	for k, v := range m {
		out[k] = v >> 20
	}
	return out
}

// procStatus returns a process's peak RSS (VmHWM) in bytes and its state
// ("R (running)", "Z (zombie)"...), "" if it is gone.
func procStatus(pid int) (int64, string) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, ""
	}
	defer f.Close()
	var hwm int64
	var state string
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			hwm = kb << 10
		} else if v, ok := strings.CutPrefix(s.Text(), "State:"); ok {
			state = strings.TrimSpace(v)
		}
	}
	return hwm, state
}

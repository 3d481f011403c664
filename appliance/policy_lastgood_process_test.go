package appliance_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reeve-edge/reeve/api"
	"github.com/reeve-edge/reeve/policy"
)

// TestPolicy_lastGoodModuleSurvivesARestart runs a 3-node cluster whose
// rule uses pref.wasm (the prefer-label example, preferring zone z3, node
// 3's). The cluster is killed; pref.wasm is replaced with garbage, and in a
// second round deleted; the cluster starts again. Each time every node
// runs the rule with the module it last loaded, kept in its data dir (GET
// /v1/policies: running, the original digest, and a last_error saying why
// the folder's file is not used), and a manual election is decided by
// pref.wasm with that digest.
func TestPolicy_lastGoodModuleSurvivesARestart(t *testing.T) {
	pdir := t.TempDir()
	buildPolicy(t, "prefer-label", pdir, "pref.wasm")
	// A second per call, not 50 ms: the last good module passes the
	// self-test again at every start (its sampled batches new each time),
	// and on a loaded machine a Go module's call sometimes takes over
	// 50 ms (1 start in 400 on two busy cores), which refuses it.
	procs := newProcCluster(t, 3, append(append([]string{}, electionConfig...), `policy_timeout = "1s"`,
		fmt.Sprintf("policy_dir = %q", pdir), "[[election.rules]]", `topics = "pref*"`, `policy = "pref.wasm"`,
		`settings = { label = "zone", value = "z3" }`)...)
	rule := func(p *proc) api.PolicyRule {
		t.Helper()
		var r api.Policies
		if _, err := httpGetJSON("http://"+p.admin+"/v1/policies", &r); err != nil || len(r.Rules) != 1 {
			t.Fatalf("node %d: GET /v1/policies = %+v, %v", p.id, r, err)
		}
		return r.Rules[0]
	}
	digest := rule(procs[0]).Digest
	for _, p := range procs {
		if r := rule(p); !r.Running || r.Error != "" || !strings.HasPrefix(r.Digest, "sha256:") || r.Digest != digest {
			t.Fatalf("node %d: rule %+v; want pref.wasm running, digest %s", p.id, r, digest)
		}
	}
	createTopic(t, procs, "pref1", 1, 3)
	waitFullISR(t, procs[0], "pref1", 3, 30*time.Second, true)

	for _, round := range []struct {
		name  string
		spoil func() error // nil: as loaded, no restart
	}{
		{"loaded", nil},
		{"garbage", func() error {
			return os.WriteFile(filepath.Join(pdir, "pref.wasm"), []byte("\x00asm\x01\x00\x00\x00garbage"), 0o644)
		}},
		{"deleted", func() error { return os.Remove(filepath.Join(pdir, "pref.wasm")) }},
	} {
		begun := time.Now()
		if round.spoil != nil {
			for _, p := range procs {
				p.kill(t, syscall.SIGKILL) // the good module must be on disk from the moment it loaded
			}
			if err := round.spoil(); err != nil {
				t.Fatal(err)
			}
			for _, p := range procs {
				p.start(t)
			}
			for _, p := range procs {
				p.waitReady(t)
			}
		}
		for _, p := range procs {
			if r := rule(p); !r.Running || r.Digest != digest || (r.Error == "") != (round.spoil == nil) {
				t.Errorf("%s: node %d: rule %+v; want pref.wasm running with digest %s (the last good module), and a last_error after a restart",
					round.name, p.id, r, digest)
			} else if r.Error != "" {
				t.Logf("%s: node %d: last_error %q", round.name, p.id, r.Error)
			}
		}
		// The operator puts the leader on node 1; an election by the
		// policy moves it to node 3, decided by pref.wasm as loaded.
		waitFullISR(t, procs[0], "pref1", 3, 30*time.Second, true)
		moveLeader(t, procs[0], "pref1", 0, 1)
		out, errOut, status := run(t, "elect", "--topic", "pref1", "--partition", "0", "--admin", procs[0].admin)
		if status != 0 || !strings.Contains(out, "leader 3 ") {
			t.Errorf("%s: reeve elect pref1-0 = %d, %s%s; want leader 3 (zone z3)", round.name, status, out, errOut)
			continue
		}
		var rec *api.Election
		for _, p := range procs {
			for _, e := range decisionLog(p) {
				if e.Topic == "pref1" && e.From == 1 && e.To == 3 && e.Reason == string(policy.ReasonManual) && e.Committed && e.Policy != "operator" && e.Time.After(begun) {
					rec = &e
				}
			}
		}
		if rec == nil || rec.Policy != "pref.wasm" || rec.PolicyDigest != digest {
			t.Errorf("%s: the election of pref1-0 to node 3: record %+v; want decided by pref.wasm, digest %s", round.name, rec, digest)
		}
	}
}

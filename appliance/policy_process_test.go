package appliance_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reeve-edge/reeve/api"
)

// buildPolicy builds an example policy module into dir as name.
func buildPolicy(t *testing.T, example, dir, name string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", filepath.Join(dir, name), "./wasm/examples/"+example)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build policy %s: %v\n%s", example, err, out)
	}
}

// TestPolicy_failoverElectsTheLabelledReplica is the failover test with
// the prefer-label module selected: when the leader dies, the replica whose
// node carries the label leads, not the first in-sync replica first-isr
// would choose.
func TestPolicy_failoverElectsTheLabelledReplica(t *testing.T) {
	dir := t.TempDir()
	buildPolicy(t, "prefer-label", dir, "prefer-label.wasm")
	_, url := natsServer(t)
	loaded := subscribe(t, url, "reeve.proc-test.policy_loaded.prefer-label~wasm")
	procs := newProcCluster(t, 3, append(append([]string{}, electionConfig...),
		fmt.Sprintf("events:nats_url = %q", url),
		fmt.Sprintf("policy_dir = %q", dir), "[[election.rules]]", `topics = "line*"`, `policy = "prefer-label.wasm"`,
		`settings = { label = "zone", value = "z3" }`)...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	createTopic(t, procs, "line1", 3, 3)
	waitTopic(t, procs[0], "line1", 3)
	var pol api.Policies
	if _, err := httpGetJSON("http://"+procs[0].admin+"/v1/policies", &pol); err != nil || len(pol.Rules) != 1 ||
		!pol.Rules[0].Running || !strings.HasPrefix(pol.Rules[0].Digest, "sha256:") {
		t.Fatalf("GET /v1/policies = %+v, %v; want prefer-label.wasm running", pol, err)
	}
	// A partition whose replicas are [a, b, 3]: with a dead, first-isr
	// would elect b; prefer-label must elect 3 (node 3 is in zone z3).
	var d api.TopicDescription
	if _, err := httpGetJSON("http://"+procs[0].admin+"/v1/topics/line1", &d); err != nil {
		t.Fatal(err)
	}
	part, victim := -1, uint64(0)
	for _, ps := range d.PartitionStates {
		if len(ps.Replicas) == 3 && ps.Replicas[2] == 3 {
			part, victim = int(ps.Partition), ps.Replicas[0]
		}
	}
	if part < 0 {
		t.Fatalf("no partition with node 3 last among its replicas: %+v", d.PartitionStates)
	}
	moveLeader(t, procs[0], "line1", part, victim)
	prod := clusterClient(t, procs, kgo.DefaultProduceTopic("line1"), kgo.RequiredAcks(kgo.AllISRAcks()))
	for i := range 50 {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i)), Partition: int32(part)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	procs[victim-1].kill(t, syscall.SIGKILL)
	var watcher *proc
	for _, p := range procs {
		if uint64(p.id) != victim {
			watcher = p
		}
	}
	deadline := time.Now().Add(testLeaderTimeout + 10*time.Second)
	for {
		ls, ok := partitionLeaders(watcher, "line1")
		if ok && len(ls) == 3 && ls[part][0] != 0 && uint64(ls[part][0]) != victim {
			if ls[part][0] != 3 {
				t.Fatalf("line1-%d: node %d elected; prefer-label (zone=z3) should have chosen node 3", part, ls[part][0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("line1-%d: no new leader after node %d was killed", part, victim)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The decision log names the module.
	found := false
	for _, p := range procs {
		if uint64(p.id) == victim {
			continue
		}
		for _, r := range decisionLog(p) {
			found = found || (r.Topic == "line1" && int(r.Partition) == part && r.To == 3 && r.Policy == "prefer-label.wasm")
		}
	}
	if !found {
		t.Errorf("no decision-log record of line1-%d elected to node 3 by prefer-label.wasm", part)
	}
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("after"), Partition: int32(part)}).FirstErr(); err != nil {
		t.Errorf("produce after the failover: %v", err)
	}
	// Every node announced the module it loaded.
	nodes := map[uint64]bool{}
	for _, r := range loaded() {
		if r.env.Data.Policy == "prefer-label.wasm" && strings.HasPrefix(r.env.Data.PolicyDigest, "sha256:") {
			nodes[r.env.Data.Node] = true
		}
	}
	if len(nodes) != 3 {
		t.Errorf("policy_loaded events from nodes %v, want all three", nodes)
	}
}

// TestPolicy_sighupLoadsANewModuleAndKeepsAGoodOneOverABadOne runs a node
// whose rule names a module not yet in the folder: first-isr stands in.
// The module is dropped in and SIGHUP loads it; then garbage replaces the
// file and SIGHUP refuses it, keeping the loaded module running.
func TestPolicy_sighupLoadsANewModuleAndKeepsAGoodOneOverABadOne(t *testing.T) {
	pdir := t.TempDir()
	staging := t.TempDir()
	buildPolicy(t, "prefer-label", staging, "prefer-label.wasm")
	p, _ := kafkaNodeTB(t, fmt.Sprintf("\n[election]\npolicy_dir = %q\n[[election.rules]]\ntopics = \"*\"\npolicy = \"prefer-label.wasm\"\nsettings = { label = \"zone\", value = \"z1\" }\n", pdir))
	get := func() api.Policies {
		var r api.Policies
		if _, err := httpGetJSON("http://"+p.admin+"/v1/policies", &r); err != nil || len(r.Rules) != 1 {
			t.Fatalf("GET /v1/policies = %+v, %v", r, err)
		}
		return r
	}
	if r := get(); r.Rules[0].Running || !strings.Contains(r.Rules[0].Error, "prefer-label.wasm") {
		t.Fatalf("rule with no module in the folder: %+v, want not running and last_error naming the file", r)
	}
	code, err := os.ReadFile(filepath.Join(staging, "prefer-label.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pdir, "prefer-label.wasm"), code, 0o644); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	var digest string
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if r := get(); r.Rules[0].Running {
			digest = r.Rules[0].Digest
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("module not loaded after SIGHUP: %+v", get())
		}
	}
	if err := os.WriteFile(filepath.Join(pdir, "prefer-label.wasm"), []byte("\x00asm garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r := get()
		if r.Rules[0].Error != "" {
			if !r.Rules[0].Running || r.Rules[0].Digest != digest {
				t.Fatalf("a refused module replaced the good one: %+v", r)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("garbage module not reported refused: %+v", r)
		}
	}
	logs, _ := os.ReadFile(p.logPath)
	for _, want := range []string{"reeve reloading", "election policy loaded", "election policy rejected"} {
		if !strings.Contains(string(logs), want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if p.cmd.ProcessState != nil {
		t.Errorf("the node exited: %v", p.cmd.ProcessState)
	}
}

// TestPolicy_sighupAppliesChangedRules edits [[election.rules]] in the
// file of a running node: SIGHUP puts the new list in force, loading the
// new rule's module before it decides, and keeps the instance of a rule
// that did not change; removing the rule again leaves first-isr alone.
func TestPolicy_sighupAppliesChangedRules(t *testing.T) {
	pdir := t.TempDir()
	buildPolicy(t, "prefer-label", pdir, "prefer-label.wasm")
	first := "[[election.rules]]\ntopics = \"plant-*\"\npolicy = \"prefer-label.wasm\"\nsettings = { label = \"zone\", value = \"z1\" }\n"
	p, _ := kafkaNodeTB(t, fmt.Sprintf("\n[election]\npolicy_dir = %q\n%s", pdir, first))
	type ruleState = api.PolicyRule
	get := func() []ruleState {
		var r api.Policies
		if _, err := httpGetJSON("http://"+p.admin+"/v1/policies", &r); err != nil {
			t.Fatalf("GET /v1/policies: %v", err)
		}
		return r.Rules
	}
	waitRules := func(want func([]ruleState) bool, what string) []ruleState {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if r := get(); want(r) {
				return r
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: rules are %+v", what, get())
			}
		}
	}
	before := waitRules(func(r []ruleState) bool { return len(r) == 1 && r[0].Running }, "the first rule's module did not load")
	rewrite := func(rules string) {
		t.Helper()
		b, err := os.ReadFile(p.cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		cfg := string(b)
		i := strings.Index(cfg, "[[election.rules]]")
		j := strings.Index(cfg, "\n\n[admin]")
		if i < 0 || j < i {
			t.Fatalf("cannot find the rules in %s", cfg)
		}
		if err := os.WriteFile(p.cfgPath, []byte(cfg[:i]+rules+cfg[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		p.cmd.Process.Signal(syscall.SIGHUP)
	}
	second := "[[election.rules]]\ntopics = \"line-*\"\npolicy = \"prefer-label.wasm\"\nsettings = { label = \"zone\", value = \"z2\" }\n"
	rewrite(second + first)
	after := waitRules(func(r []ruleState) bool { return len(r) == 2 && r[0].Running && r[1].Running },
		"the new rule is not running after SIGHUP")
	if after[0].Topics != "line-*" || after[1].Topics != "plant-*" || after[1].Digest != before[0].Digest {
		t.Fatalf("rules after SIGHUP: %+v (before %+v)", after, before)
	}
	rewrite("")
	waitRules(func(r []ruleState) bool { return len(r) == 0 }, "rules not removed after SIGHUP")
	logs, _ := os.ReadFile(p.logPath)
	if !strings.Contains(string(logs), "reload: election rules changed") {
		t.Errorf("log lacks the rule change")
	}
	if p.cmd.ProcessState != nil {
		t.Errorf("the node exited: %v", p.cmd.ProcessState)
	}
}

// TestPolicy_leastLagElectsTheReplicaWithTheLongestLog runs least-lag on
// log-end offsets the controller asks the replicas for. A partition's
// replicas are [a, b, c]; b is frozen while a takes acks=1 records that c
// copies; then a dies and b comes back, alive and still in the ISR but
// behind. first-isr would elect b and lose those records; least-lag must
// elect c, and every record stays readable.
func TestPolicy_leastLagElectsTheReplicaWithTheLongestLog(t *testing.T) {
	dir := t.TempDir()
	buildPolicy(t, "least-lag", dir, "least-lag.wasm")
	procs := newProcCluster(t, 3, append(append([]string{}, electionConfig...),
		fmt.Sprintf("policy_dir = %q", dir), "[[election.rules]]", `topics = "lag*"`, `policy = "least-lag.wasm"`)...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	createTopic(t, procs, "lag1", 1, 3)
	waitTopic(t, procs[0], "lag1", 1)
	var d api.TopicDescription
	if _, err := httpGetJSON("http://"+procs[0].admin+"/v1/topics/lag1", &d); err != nil || len(d.PartitionStates) != 1 ||
		len(d.PartitionStates[0].Replicas) != 3 {
		t.Fatalf("GET /v1/topics/lag1 = %+v, %v", d, err)
	}
	r := d.PartitionStates[0].Replicas
	a, b, c := procs[r[0]-1], procs[r[1]-1], procs[r[2]-1]
	if d.PartitionStates[0].Leader != r[0] {
		moveLeader(t, procs[0], "lag1", 0, r[0])
	}
	waitFullISR(t, procs[0], "lag1", 3, 30*time.Second, true)
	t.Cleanup(func() { b.cmd.Process.Signal(syscall.SIGCONT) })

	all := clusterClient(t, procs, kgo.DefaultProduceTopic("lag1"), kgo.RequiredAcks(kgo.AllISRAcks()))
	for i := range 20 {
		if err := all.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("all-%d", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	b.cmd.Process.Signal(syscall.SIGSTOP)
	// Let b's parked fetch (a 500 ms long poll) end, so no answer with the
	// records below waits in its socket.
	time.Sleep(700 * time.Millisecond)
	lone := kgoClient(t, a.kafka, kgo.DefaultProduceTopic("lag1"), kgo.RequiredAcks(kgo.LeaderAck()),
		kgo.DisableIdempotentWrite(), kgo.RecordRetries(0))
	for i := range 30 {
		if err := lone.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("one-%d", i))}).FirstErr(); err != nil {
			t.Fatalf("acks=1 write to the leader: %v", err)
		}
	}
	lone.Close()
	for deadline := time.Now().Add(10 * time.Second); !bytes.Equal(partitionLogs(t, a, "lag1", 0), partitionLogs(t, c, "lag1", 0)); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the running follower never copied the leader's log")
		}
	}

	a.kill(t, syscall.SIGKILL)
	b.cmd.Process.Signal(syscall.SIGCONT)
	for deadline := time.Now().Add(testLeaderTimeout + 10*time.Second); ; time.Sleep(50 * time.Millisecond) {
		ls, ok := partitionLeaders(c, "lag1")
		if ok && len(ls) == 1 && ls[0][0] != 0 && ls[0][0] != int64(a.id) {
			if ls[0][0] != int64(c.id) {
				t.Fatalf("lag1-0: node %d elected; least-lag should have chosen node %d, whose log is longer", ls[0][0], c.id)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lag1-0: no new leader after node %d was killed", a.id)
		}
	}
	// The decision saw b alive and in sync (so first-isr would have taken
	// it) and was least-lag's.
	var decided bool
	for _, p := range []*proc{b, c} {
		for _, rec := range decisionLog(p) {
			if rec.Topic == "lag1" && rec.To == uint64(c.id) {
				decided = true
				if rec.Policy != "least-lag.wasm" || !strings.Contains(rec.Input, fmt.Sprintf("%d(alive,isr", b.id)) {
					t.Errorf("decision %+v: want least-lag.wasm with node %d alive and in sync", rec, b.id)
				}
			}
		}
	}
	if !decided {
		t.Error("no decision-log record of the election")
	}
	cons := clusterClient(t, []*proc{b, c}, kgo.ConsumeTopics("lag1"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]bool{}
	for len(seen) < 50 {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume after %d records: %v", len(seen), err)
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}
}

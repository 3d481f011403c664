package appliance_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reeve-edge/reeve/api"
)

// These tests drive the real reeve binary, built once in TestMain with the
// test hooks (testhooks.go at the repository root) compiled in, as
// separate processes talking real TCP on 127.0.0.x.

var reeveBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "reeve-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	reeveBin = filepath.Join(dir, "reeve")
	build := exec.Command("go", "build", "-tags", "reeve_testhooks", "-o", reeveBin, "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build reeve: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run runs a reeve command to completion and returns its output and status.
func run(t testing.TB, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	cmd := exec.Command(reeveBin, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return o.String(), e.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run reeve %v: %v", args, err)
	}
	return o.String(), e.String(), 0
}

func freePort(t testing.TB, ip string) string {
	t.Helper()
	for {
		l, err := net.Listen("tcp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		// The kernel may hand a port it just gave back out again at once:
		// two listeners of one node then ask for the same port. A port is
		// given to one test listener only, in this test binary.
		givenMu.Lock()
		_, seen := givenPorts[addr]
		givenPorts[addr] = struct{}{}
		givenMu.Unlock()
		if !seen {
			return addr
		}
	}
}

var (
	givenMu    sync.Mutex
	givenPorts = map[string]struct{}{}
)

// proc is one reeve serve process.
type proc struct {
	id      int
	cfgPath string
	admin   string
	raft    string
	kafka   string
	cmd     *exec.Cmd
	logPath string
	env     []string // extra environment, e.g. a test hook
	wrap    []string // a command reeve runs under, e.g. prlimit with its flags
}

// eventsHook is the file that switches the node's event publisher test
// hook, next to its log.
func (p *proc) eventsHook() string { return p.logPath + ".events-hook" }

// fsyncEIO is the file whose existence makes the node's partition log
// fsyncs fail with EIO (testhooks.go at the root).
func (p *proc) fsyncEIO() string { return p.logPath + ".fsync-eio" }

func (p *proc) start(t testing.TB) {
	t.Helper()
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	args := append(slices.Clone(p.wrap), reeveBin, "serve", "-c", p.cfgPath)
	p.cmd = exec.Command(args[0], args[1:]...)
	p.cmd.Env = append(os.Environ(), p.env...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start node %d: %v", p.id, err)
	}
	logf.Close()
	cmd := p.cmd
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		if t.Failed() {
			b, _ := os.ReadFile(p.logPath)
			t.Logf("node %d log:\n%s", p.id, tail(string(b), 4000))
		}
	})
}

// waitListening waits until something accepts TCP connections at addr.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens at %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// allBut returns procs without p, in order.
func allBut(procs []*proc, p *proc) []*proc {
	var out []*proc
	for _, q := range procs {
		if q != p {
			out = append(out, q)
		}
	}
	return out
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (p *proc) kill(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal node %d: %v", p.id, err)
	}
	p.cmd.Wait()
}

func (p *proc) waitReady(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + p.admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("node %d not ready within 30s", p.id)
}

// newProcCluster writes configs for n nodes on 127.0.0.1..n and starts them.
func newProcCluster(t testing.TB, n int, kafkaExtra ...string) []*proc {
	t.Helper()
	return newProcClusterEach(t, n, nil, kafkaExtra...)
}

// newProcClusterEach is newProcCluster with lines each node's config gets
// after kafkaExtra (nodeExtra may be nil), e.g. its own [tls] files.
func newProcClusterEach(t testing.TB, n int, nodeExtra func(id int) []string, kafkaExtra ...string) []*proc {
	t.Helper()
	return newProcClusterAt(t, n, func(p *proc) {
		ip := fmt.Sprintf("127.0.0.%d", p.id)
		p.raft, p.admin = freePort(t, ip), freePort(t, ip)
	}, nodeExtra, kafkaExtra...)
}

// newProcClusterAt is newProcClusterEach with place choosing each node's
// raft and admin addresses (and, if it likes, its kafka address and a
// command to run it under, such as ip netns exec).
func newProcClusterAt(t testing.TB, n int, place func(p *proc), nodeExtra func(id int) []string, kafkaExtra ...string) []*proc {
	t.Helper()
	dir := t.TempDir()
	var procs []*proc
	var members []string
	for i := 1; i <= n; i++ {
		p := &proc{id: i, logPath: filepath.Join(dir, fmt.Sprintf("node%d.log", i))}
		place(p)
		// A test makes a node's event publisher misbehave by writing
		// "hold" or "noack" to one file, and its disk fail fsyncs by
		// creating another (testhooks.go at the root).
		p.env = []string{"REEVE_TEST_EVENTS_HOOK=" + p.eventsHook(), "REEVE_TEST_FSYNC_EIO=" + p.fsyncEIO()}
		procs = append(procs, p)
		members = append(members, fmt.Sprintf("%q", fmt.Sprintf("%d@%s", i, p.raft)))
	}
	for _, p := range procs {
		extra := kafkaExtra
		if nodeExtra != nil {
			extra = append(slices.Clone(kafkaExtra), nodeExtra(p.id)...)
		}
		p.cfgPath = filepath.Join(dir, fmt.Sprintf("node%d.toml", p.id))
		writeNodeConfig(t, p, filepath.Join(dir, fmt.Sprintf("data%d", p.id)),
			fmt.Sprintf("initial_members = [%s]", strings.Join(members, ", ")), extra...)
		p.start(t)
	}
	for _, p := range procs {
		p.waitReady(t)
	}
	return procs
}

// writeNodeConfig writes a node's config. kafkaExtra lines go at the end of
// the [kafka] section (and may open further sections), except lines
// prefixed "raft:", which go into [raft]; a "raft:rtt = ..." line replaces
// the tests' 10 ms tick.
func writeNodeConfig(t testing.TB, p *proc, dataDir, clusterLine string, kafkaExtra ...string) {
	t.Helper()
	raftLines := []string{`rtt = "10ms"`}
	host, _, _ := net.SplitHostPort(p.raft)
	// Each node's embedded NATS server on a free port, unless the test
	// points the node at its own server with "events:nats_url = ...".
	eventLines := []string{fmt.Sprintf("embedded_listen = %q", host+":0")}
	var rest []string
	for _, l := range kafkaExtra {
		if ev, ok := strings.CutPrefix(l, "events:"); ok {
			eventLines = append(eventLines, ev)
			continue
		}
		if r, ok := strings.CutPrefix(l, "raft:"); ok {
			if strings.HasPrefix(r, "rtt") {
				raftLines[0] = r
			} else {
				raftLines = append(raftLines, r)
			}
		} else {
			rest = append(rest, l)
		}
	}
	kafkaExtra = rest
	if p.kafka == "" {
		p.kafka = freePort(t, host)
	}
	cfg := fmt.Sprintf(`[node]
id = %d
data_dir = %q
labels = { zone = "z%d" }

[cluster]
name = "proc-test"
%s

[raft]
address = %q
%s
snapshot_entries = 20
compaction_overhead = 5

[kafka]
listen = %q
group_initial_rebalance_delay = "0s"
%s

[admin]
listen = %q

[log]
level = "info"
format = "json"

[events]
%s
`, p.id, dataDir, p.id, clusterLine, p.raft, strings.Join(raftLines, "\n"), p.kafka, strings.Join(kafkaExtra, "\n"), p.admin,
		strings.Join(eventLines, "\n"))
	if err := os.WriteFile(p.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

type topicDesc = api.TopicDescription

func describe(t *testing.T, p *proc, topic string, stale bool) (topicDesc, error) {
	t.Helper()
	url := "http://" + p.admin + "/v1/topics/" + topic
	if stale {
		url += "?stale=true"
	}
	resp, err := http.Get(url)
	if err != nil {
		return topicDesc{}, err
	}
	defer resp.Body.Close()
	var d topicDesc
	if resp.StatusCode != http.StatusOK {
		return d, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return d, json.NewDecoder(resp.Body).Decode(&d)
}

func waitTopic(t *testing.T, p *proc, topic string, partitions int) topicDesc {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		d, err := describe(t, p, topic, true)
		if err == nil && len(d.PartitionStates) == partitions {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d: topic %s with %d partitions: %+v, %v", p.id, topic, partitions, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type groupInfo = api.Group

// clusterGroup returns what a node's admin API says of its cluster group.
func clusterGroup(t *testing.T, p *proc) groupInfo {
	t.Helper()
	resp, err := http.Get("http://" + p.admin + "/v1/cluster")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info api.Cluster
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil || len(info.Groups) == 0 {
		t.Fatalf("GET /v1/cluster: %+v, %v", info, err)
	}
	return info.Groups[0]
}

func TestProcessCluster_cliAndKilledNodeRecovers(t *testing.T) {
	procs := newProcCluster(t, 3)
	out, errOut, status := run(t, "topic", "create", "telemetry", "-p", "6", "-r", "3", "--config", "retention.ms=3600000", "--admin", procs[0].admin)
	if status != 0 {
		t.Fatalf("topic create: status %d, %s%s", status, out, errOut)
	}
	if !strings.Contains(out, "created topic telemetry") {
		t.Errorf("topic create printed %q", out)
	}
	before := waitTopic(t, procs[2], "telemetry", 6)

	out, _, status = run(t, "topic", "list", "--admin", procs[1].admin)
	if status != 0 || !strings.Contains(out, "telemetry") || !strings.Contains(out, before.ID) {
		t.Errorf("topic list: status %d, %q", status, out)
	}
	out, _, status = run(t, "topic", "describe", "telemetry", "--admin", procs[2].admin)
	if status != 0 || strings.Count(out, "\n") != 9 || !strings.Contains(out, "retention.ms=3600000") {
		t.Errorf("topic describe: status %d, %q", status, out)
	}
	_, errOut, status = run(t, "topic", "create", "wide", "-p", "1", "-r", "5", "--admin", procs[0].admin)
	if status != 1 || !strings.Contains(errOut, "replication factor 5 but only 3 live registered node(s)") {
		t.Errorf("topic create rf=5: status %d, stderr %q", status, errOut)
	}

	// Enough commands that node 2 snapshots the cluster group (the configs
	// set snapshot_entries = 20), so its restart recovers from a snapshot
	// plus the log after it.
	for i := range 24 {
		if _, errOut, status := run(t, "topic", "create", fmt.Sprintf("filler-%02d", i), "-r", "3", "--admin", procs[0].admin); status != 0 {
			t.Fatalf("topic create filler-%02d: %s", i, errOut)
		}
	}
	var snapAt uint64
	deadline := time.Now().Add(20 * time.Second)
	for snapAt == 0 && time.Now().Before(deadline) {
		snapAt = clusterGroup(t, procs[1]).SnapshotIndex
		time.Sleep(50 * time.Millisecond)
	}
	if snapAt == 0 {
		t.Fatalf("node 2 took no snapshot of the cluster group")
	}

	// SIGKILL node 2: no shutdown code runs. The other two keep a quorum.
	procs[1].kill(t, syscall.SIGKILL)
	out, errOut, status = run(t, "topic", "create", "while-down", "-p", "4", "-r", "3", "--admin", procs[0].admin)
	if status != 0 {
		t.Fatalf("topic create while node 2 is down: status %d, %s%s", status, out, errOut)
	}
	procs[1].start(t)
	procs[1].waitReady(t)
	after := waitTopic(t, procs[1], "telemetry", 6)
	waitTopic(t, procs[1], "filler-23", 1)
	if g := clusterGroup(t, procs[1]); g.SnapshotIndex < snapAt || g.AppliedIndex <= snapAt {
		t.Errorf("node 2 after restart: cluster group %+v, want snapshot >= %d and applied past it", g, snapAt)
	}
	waitTopic(t, procs[1], "while-down", 4)
	for i, p := range after.PartitionStates {
		if p.Group != before.PartitionStates[i].Group || p.Leader != before.PartitionStates[i].Leader {
			t.Errorf("partition %d after restart = %+v, before %+v", i, p, before.PartitionStates[i])
		}
	}

	_, _, status = run(t, "topic", "delete", "while-down", "--admin", procs[1].admin)
	if status != 0 {
		t.Errorf("topic delete: status %d", status)
	}
	_, errOut, status = run(t, "topic", "describe", "while-down", "--admin", procs[2].admin)
	if status != 1 || !strings.Contains(errOut, "unknown topic") {
		t.Errorf("describe deleted topic: status %d, %q", status, errOut)
	}
	checkPartitionsAndElectionsCLI(t, procs[0])
}

// checkPartitionsAndElectionsCLI: `reeve partitions` shows who leads each
// of telemetry's 6 partitions, as a table and as JSON; `reeve elect --json`
// moves partition 0 and `reeve elections` shows that manual election.
func checkPartitionsAndElectionsCLI(t *testing.T, p *proc) {
	t.Helper()
	out, errOut, status := run(t, "partitions", "--topic", "telemetry", "--admin", p.admin)
	if status != 0 || strings.Count(out, "\ntelemetry-") != 6 || !strings.HasPrefix(out, "PARTITION") {
		t.Fatalf("partitions: status %d, %q %s", status, out, errOut)
	}
	out, errOut, status = run(t, "partitions", "--topic", "telemetry", "--json", "--admin", p.admin)
	var info api.Partitions
	if err := json.Unmarshal([]byte(out), &info); status != 0 || err != nil || len(info.Partitions) != 6 {
		t.Fatalf("partitions --json: status %d, %v, %q %s", status, err, out, errOut)
	}
	p0 := info.Partitions[0]
	if len(p0.ReplicaStates) != 3 || len(p0.ISR) != 3 {
		t.Fatalf("telemetry-0 = %+v, want 3 replicas in sync", p0)
	}
	to := p0.ISR[0]
	if to == p0.Leader {
		to = p0.ISR[1]
	}
	out, errOut, status = run(t, "elect", "--topic", "telemetry", "--partition", "0", "--to", fmt.Sprint(to), "--json", "--admin", p.admin)
	var elected api.Partition
	if err := json.Unmarshal([]byte(out), &elected); status != 0 || err != nil || elected.Leader != to {
		t.Fatalf("elect --to %d --json: status %d, %v, %q %s", to, status, err, out, errOut)
	}
	out, errOut, status = run(t, "elections", "--topic", "telemetry", "--admin", p.admin)
	if status != 0 || !strings.Contains(out, "telemetry-0") || !strings.Contains(out, "manual") {
		t.Fatalf("elections: status %d, %q %s", status, out, errOut)
	}
}

func TestProcessCluster_nodeAddJoinsAndNodeRemoveLeaves(t *testing.T) {
	procs := newProcCluster(t, 3)
	dir := t.TempDir()
	p4 := &proc{id: 4, raft: freePort(t, "127.0.0.4"), admin: freePort(t, "127.0.0.4"),
		cfgPath: filepath.Join(dir, "node4.toml"), logPath: filepath.Join(dir, "node4.log")}
	writeNodeConfig(t, p4, filepath.Join(dir, "data4"), "join = true")

	// Nothing answers at node 4's address yet: refused, nothing added.
	_, errOut, status := run(t, "node", "add", "--id", "4", "--raft-address", p4.raft, "--admin", procs[2].admin)
	if status != 1 || !strings.Contains(errOut, "cluster.join = true") {
		t.Fatalf("node add before node 4 runs: status %d, %q; want a refusal that says to start it first", status, errOut)
	}
	p4.start(t)
	waitListening(t, p4.raft)
	out, errOut, status := run(t, "node", "add", "--id", "4", "--raft-address", p4.raft, "--admin", procs[2].admin)
	if status != 0 || !strings.Contains(out, "non-voter") {
		t.Fatalf("node add: status %d, %s%s", status, out, errOut)
	}
	p4.waitReady(t)
	out, _, status = run(t, "node", "list", "--admin", p4.admin)
	if status != 0 || strings.Count(out, "active") != 4 || !strings.Contains(out, "zone=z4") {
		t.Errorf("node list on node 4: status %d, %q", status, out)
	}
	out, errOut, status = run(t, "topic", "create", "four-way", "-p", "4", "-r", "4", "--admin", p4.admin)
	if status != 0 {
		t.Fatalf("topic create rf=4: status %d, %s%s", status, out, errOut)
	}
	waitTopic(t, procs[0], "four-way", 4)

	out, errOut, status = run(t, "node", "remove", "1", "--admin", procs[1].admin)
	if status != 0 {
		t.Fatalf("node remove: status %d, %s%s", status, out, errOut)
	}
	procs[0].kill(t, syscall.SIGTERM)
	out, _, status = run(t, "node", "list", "--admin", p4.admin)
	if status != 0 || !strings.Contains(out, "removed") {
		t.Errorf("node list after remove: status %d, %q", status, out)
	}
	_, errOut, status = run(t, "node", "add", "--id", "1", "--raft-address", "127.0.0.9:1", "--admin", p4.admin)
	if status != 1 || !strings.Contains(errOut, "cannot be reused") {
		t.Errorf("re-adding removed id: status %d, %q", status, errOut)
	}
}

// httpGetJSON decodes a GET's JSON answer into v and returns the status.
func httpGetJSON(url string, v any) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	return resp.StatusCode, json.NewDecoder(resp.Body).Decode(v)
}

package appliance_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reeve-edge/reeve/appliance"
	"github.com/reeve-edge/reeve/config"
)

// scrape fetches a node's /metrics and parses it with Prometheus's own
// text-format parser.
func scrape(t testing.TB, admin string) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := tryScrape(admin)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

func tryScrape(admin string) (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics on %s: %s %s", admin, resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		return nil, fmt.Errorf("GET /metrics on %s: Content-Type %q, want the Prometheus text format", admin, ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		return nil, fmt.Errorf("parse /metrics of %s: %w\n%s", admin, err, body)
	}
	return fams, nil
}

// sample sums the values of a family's series whose labels include want
// (a counter's or gauge's value, a histogram's sample count).
func sample(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	sum := 0.0
	f := fams[name]
	if f == nil {
		return 0
	}
	for _, m := range f.GetMetric() {
		match := true
		for k, v := range want {
			i := slices.IndexFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetName() == k })
			match = match && i >= 0 && m.GetLabel()[i].GetValue() == v
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		case m.Untyped != nil:
			sum += m.GetUntyped().GetValue()
		}
	}
	return sum
}

// documentedMetrics returns the families docs/metrics.md lists: the first
// column of its tables, `name`.
func documentedMetrics(t *testing.T) []string {
	t.Helper()
	doc, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatalf("ReadFile(../docs/metrics.md) error = %v", err)
	}
	var names []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_:]+)` \\|").FindAllStringSubmatch(string(doc), -1) {
		names = append(names, m[1])
	}
	if len(names) < 20 {
		t.Fatalf("docs/metrics.md lists %d metrics; its tables' rows start with | `name` |", len(names))
	}
	return names
}

// nodeConfig is the configuration of a one-node cluster on free loopback
// ports, with its data in a temporary directory.
func nodeConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Node.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.Raft.Address = freePort(t, "127.0.0.1")
	cfg.Cluster.InitialMembers = []string{"1@" + cfg.Raft.Address}
	cfg.Kafka.Listen = freePort(t, "127.0.0.1")
	cfg.Admin.Listen = freePort(t, "127.0.0.1")
	cfg.Events.EmbeddedListen = "127.0.0.1:0"
	return cfg
}

// startNode starts a one-node reeve in this process (so the race detector
// watches the code under test) and waits until it has joined its cluster.
// mutate, if given, changes the configuration first. After the test the
// node is closed and checked to have left no goroutine (checkNoLeaks), so
// the test must not call t.Parallel.
func startNode(t *testing.T, mutate ...func(*config.Config)) *appliance.Server {
	t.Helper()
	cfg := nodeConfig(t)
	for _, m := range mutate {
		m(cfg)
	}
	checkNoLeaks(t)
	s, err := appliance.Start(cfg, slog.New(slog.DiscardHandler), appliance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Store().WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestMetrics_parseAndMatchTheDocs produces and consumes 25 records on a
// one-node reeve, then checks that /metrics parses with Prometheus's text
// parser, that its figures match what happened, that every family it
// exposes is documented in docs/metrics.md, and that every documented
// family is exposed.
func TestMetrics_parseAndMatchTheDocs(t *testing.T) {
	s := startNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.KafkaAddr()), kgo.DefaultProduceTopic("metered"),
		kgo.ConsumeTopics("metered"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 2, 1, nil, "metered"); err != nil {
		t.Fatal(err)
	}
	const records = 25
	for i := range records {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for seen := 0; seen < records; {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume after %d: %v", seen, err)
		}
		seen += fs.NumRecords()
	}

	resp, err := http.Get("http://" + s.AdminAddr() + "/livez")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /livez = %v, %v; want 200", resp, err)
	}
	resp.Body.Close()

	// Every Raft group of the only node has it as leader; a group may
	// finish its first election a moment after the node is ready.
	var fams map[string]*dto.MetricFamily
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		fams = scrape(t, s.AdminAddr())
		if sample(fams, "reeve_raft_groups_led", nil) == 5 || time.Now().After(deadline) {
			break
		}
	}
	produce := map[string]string{"api": "produce"}
	checks := []struct {
		name string
		got  float64
		ok   func(float64) bool
		want string
	}{
		{"reeve_kafka_records_produced_total", sample(fams, "reeve_kafka_records_produced_total", nil), eq(records), "25"},
		// A client may fetch records again (26 and 27 seen here) and drop
		// the copies it has; the server counts what it sent.
		{"reeve_kafka_records_fetched_total", sample(fams, "reeve_kafka_records_fetched_total", nil), atLeast(records), ">= 25"},
		{"reeve_kafka_bytes_produced_total", sample(fams, "reeve_kafka_bytes_produced_total", nil), above(records * 61), "> 25 batch headers"},
		{"reeve_kafka_bytes_fetched_total", sample(fams, "reeve_kafka_bytes_fetched_total", nil), above(0), "> 0"},
		{`reeve_kafka_request_latency_seconds{api="produce"} count`, sample(fams, "reeve_kafka_request_latency_seconds", produce), atLeast(records), ">= 25"},
		{`reeve_kafka_request_latency_seconds{api="metadata"} count`, sample(fams, "reeve_kafka_request_latency_seconds", map[string]string{"api": "metadata"}), above(0), "> 0"},
		{"reeve_raft_proposal_latency_seconds count", sample(fams, "reeve_raft_proposal_latency_seconds", nil), above(0), "> 0 (topic creation)"},
		{"reeve_partitions", sample(fams, "reeve_partitions", nil), eq(2), "2"},
		{"reeve_partitions_led", sample(fams, "reeve_partitions_led", nil), eq(2), "2"},
		{"reeve_partitions_under_replicated", sample(fams, "reeve_partitions_under_replicated", nil), eq(0), "0"},
		{"reeve_partitions_offline", sample(fams, "reeve_partitions_offline", nil), eq(0), "0"},
		{"reeve_ready", sample(fams, "reeve_ready", nil), eq(1), "1"},
		{`reeve_nodes{state="active"}`, sample(fams, "reeve_nodes", map[string]string{"state": "active"}), eq(1), "1"},
		{"reeve_nodes_alive", sample(fams, "reeve_nodes_alive", nil), eq(1), "1"},
		{"reeve_raft_groups_led", sample(fams, "reeve_raft_groups_led", nil), eq(5), "5 (cluster and 4 partition groups) within 15 s"},
		{"reeve_raft_groups_leaderless", sample(fams, "reeve_raft_groups_leaderless", nil), eq(0), "0"},
		{"process_resident_memory_bytes", sample(fams, "process_resident_memory_bytes", nil), above(0), "> 0"},
	}
	for _, c := range checks {
		if !c.ok(c.got) {
			t.Errorf("%s = %v, want %s", c.name, c.got, c.want)
		}
	}
	if f := fams["reeve_kafka_request_latency_seconds"]; f.GetType() != dto.MetricType_HISTOGRAM {
		t.Errorf("reeve_kafka_request_latency_seconds is a %v, want a histogram with le buckets", f.GetType())
	}
	if f := fams["reeve_elections_total"]; f.GetType() != dto.MetricType_COUNTER {
		t.Errorf("reeve_elections_total is a %v, want a counter", f.GetType())
	}

	documented := documentedMetrics(t)
	for name := range fams {
		if strings.HasPrefix(name, "reeve_") && !slices.Contains(documented, name) {
			t.Errorf("/metrics exposes %s, which docs/metrics.md does not list", name)
		}
	}
	for _, name := range documented {
		// A fallback's series appear with the first fallback: policy and
		// cause are known only then.
		if _, ok := fams[name]; !ok && name != "reeve_policy_fallbacks_total" {
			t.Errorf("docs/metrics.md lists %s; /metrics does not expose it", name)
		}
	}
}

func eq(want float64) func(float64) bool      { return func(v float64) bool { return v == want } }
func above(than float64) func(float64) bool   { return func(v float64) bool { return v > than } }
func atLeast(want float64) func(float64) bool { return func(v float64) bool { return v >= want } }

// TestMetrics_failoverCountsOneElection is the acceptance check on
// three real processes: SIGKILL a partition's leader, and the survivors'
// count of committed leader-timeout elections rises by exactly one, their
// election latency histogram counts it, and they report the partition
// under-replicated (the dead leader left the ISR with the election).
func TestMetrics_failoverCountsOneElection(t *testing.T) {
	procs := newProcCluster(t, 3, electionConfig...)
	createTopic(t, procs, "metered", 1, 3)
	waitTopic(t, procs[0], "metered", 1)
	if leader, _ := leaderOf(t, procs[0], "metered"); leader != 1 {
		moveLeader(t, procs[0], "metered", 0, 1)
	}
	waitFullISR(t, procs[0], "metered", 3, 30*time.Second)
	survivors := procs[1:]
	elections := map[string]string{"reason": "leader_timeout", "result": "committed"}
	sum := func(name string, labels map[string]string) float64 {
		total := 0.0
		for _, p := range survivors {
			total += sample(scrape(t, p.admin), name, labels)
		}
		return total
	}
	before, latencyBefore := sum("reeve_elections_total", elections), sum("reeve_election_latency_seconds", nil)
	eventsBefore := sum("reeve_events_published_total", nil)
	for _, p := range survivors { // their views may apply the full ISR a moment later
		n := -1.0
		for deadline := time.Now().Add(10 * time.Second); n != 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			n = sample(scrape(t, p.admin), "reeve_partitions_under_replicated", nil)
		}
		if n != 0 {
			t.Fatalf("node %d: reeve_partitions_under_replicated = %v before the kill, want 0", p.id, n)
		}
	}

	procs[0].kill(t, syscall.SIGKILL)
	killed := time.Now()
	for deadline := killed.Add(testLeaderTimeout + 5*time.Second); ; time.Sleep(20 * time.Millisecond) {
		if leader, _ := leaderOf(t, procs[1], "metered"); leader != 0 && leader != 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no new leader")
		}
	}
	// The controller counts the election when its commit returns, which
	// may be a moment after the new leader is visible.
	after := before
	for deadline := time.Now().Add(5 * time.Second); after == before && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		after = sum("reeve_elections_total", elections)
	}
	time.Sleep(time.Second) // a second election would have been counted by now
	after = sum("reeve_elections_total", elections)
	t.Logf("committed leader_timeout elections on the survivors: %v before, %v after the kill (%v after it)",
		before, after, time.Since(killed).Round(time.Millisecond))
	if after != before+1 {
		t.Errorf("reeve_elections_total{reason=\"leader_timeout\",result=\"committed\"} summed over the survivors went from %v to %v, want one more",
			before, after)
	}
	if got := sum("reeve_election_latency_seconds", nil); got < latencyBefore+1 {
		t.Errorf("reeve_election_latency_seconds counts %v elections on the survivors after the kill, %v before; want one more", got, latencyBefore)
	}
	// The leader change (and node 1's node_down) is published by a survivor.
	events := eventsBefore
	for deadline := time.Now().Add(10 * time.Second); events == eventsBefore && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		events = sum("reeve_events_published_total", nil)
	}
	if events == eventsBefore {
		t.Errorf("reeve_events_published_total summed over the survivors stayed at %v after a failover", events)
	}
	for _, p := range survivors {
		var n float64
		for deadline := time.Now().Add(10 * time.Second); n == 0 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			n = sample(scrape(t, p.admin), "reeve_partitions_under_replicated", nil)
		}
		if n != 1 {
			t.Errorf("node %d: reeve_partitions_under_replicated = %v after the leader was killed, want 1", p.id, n)
		}
	}
}

// TestMetrics_policyFallbackIsCounted runs a node whose rule names a module
// that is not in the policy folder: a manual election is decided by
// first-isr in its place, and the fallback is counted with its policy and
// cause.
func TestMetrics_policyFallbackIsCounted(t *testing.T) {
	p, addr := kafkaNodeTB(t, fmt.Sprintf("\n[election]\npolicy_dir = %q\n[[election.rules]]\ntopics = \"*\"\npolicy = \"missing.wasm\"\n", t.TempDir()))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := kadm.NewClient(kgoClient(t, addr)).CreateTopic(ctx, 1, 1, nil, "ruled"); err != nil {
		t.Fatal(err)
	}
	waitTopic(t, p, "ruled", 1)
	fallbacks := map[string]string{"policy": "missing.wasm", "cause": "not_loaded"}
	if n := sample(scrape(t, p.admin), "reeve_policy_fallbacks_total", fallbacks); n != 0 {
		t.Fatalf("reeve_policy_fallbacks_total%v = %v before any election, want 0", fallbacks, n)
	}
	if _, errOut, status := run(t, "elect", "--topic", "ruled", "--partition", "0", "--admin", p.admin); status != 0 {
		t.Fatalf("reeve elect ruled-0 = status %d: %s", status, errOut)
	}
	fams := scrape(t, p.admin)
	if n := sample(fams, "reeve_policy_fallbacks_total", fallbacks); n != 1 {
		t.Errorf("reeve_policy_fallbacks_total%v = %v after one election, want 1", fallbacks, n)
	}
	if n := sample(fams, "reeve_policy_fallbacks_total", nil); n != 1 {
		t.Errorf("reeve_policy_fallbacks_total = %v in all, want 1", n)
	}
}

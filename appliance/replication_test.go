package appliance_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func clusterClient(t testing.TB, procs []*proc, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	var seeds []string
	for _, p := range procs {
		seeds = append(seeds, p.kafka)
	}
	return kgoClientTB(t, seeds[0], append([]kgo.Opt{kgo.SeedBrokers(seeds...)}, opts...)...)
}

// createTopic creates a topic through the Kafka API of a cluster.
func createTopic(t testing.TB, procs []*proc, topic string, partitions int32, rf int16) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := kadm.NewClient(clusterClient(t, procs)).CreateTopic(ctx, partitions, rf, nil, topic); err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// partitionLogs concatenates a partition's segment files on one node.
func partitionLogs(t *testing.T, p *proc, topic string, partition int) []byte {
	t.Helper()
	dir := filepath.Join(filepath.Dir(p.cfgPath), fmt.Sprintf("data%d", p.id), "kafka")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("%s-%d.", topic, partition)
	var out []byte
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		segs, _ := filepath.Glob(filepath.Join(dir, e.Name(), "*.log"))
		sort.Strings(segs)
		for _, s := range segs {
			b, err := os.ReadFile(s)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b...)
		}
	}
	return out
}

func TestReplication_acksAllRecordsAreOnEveryReplica(t *testing.T) {
	procs := newProcCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := clusterClient(t, procs)
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 3, nil, "replicated"); err != nil {
		t.Fatal(err)
	}
	prod := clusterClient(t, procs, kgo.DefaultProduceTopic("replicated"), kgo.RequiredAcks(kgo.AllISRAcks()))
	for i := range 3000 {
		prod.Produce(ctx, &kgo.Record{Key: []byte(strconv.Itoa(i % 10)), Value: []byte(strings.Repeat("r", 100+i%300))}, nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatalf("produce with acks=all: %v", err)
	}
	for part := range 3 {
		deadline := time.Now().Add(20 * time.Second)
		for {
			a, b, c := partitionLogs(t, procs[0], "replicated", part), partitionLogs(t, procs[1], "replicated", part), partitionLogs(t, procs[2], "replicated", part)
			if len(a) > 0 && bytes.Equal(a, b) && bytes.Equal(b, c) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("partition %d logs differ: %d, %d, %d bytes", part, len(a), len(b), len(c))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// Consumers read everything back.
	cons := clusterClient(t, procs, kgo.ConsumeTopics("replicated"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	n := 0
	for n < 3000 {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		n += fs.NumRecords()
	}
}

// isr returns a partition's ISR as a node's admin API reports it.
func isrOf(t *testing.T, p *proc, topic string, partition int) ([]uint64, uint64) {
	t.Helper()
	d, err := describe(t, p, topic, true)
	if err != nil || len(d.PartitionStates) <= partition {
		return nil, 0
	}
	ps := d.PartitionStates[partition]
	return ps.ISR, ps.Leader
}

func TestReplication_stoppedFollowersLeaveTheISRAndMinInsyncRefusesWrites(t *testing.T) {
	procs := newProcCluster(t, 3, `replica_lag_time = "2s"`)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl := clusterClient(t, procs)
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": kadm.StringPtr("3")}, "guarded"); err != nil {
		t.Fatal(err)
	}
	waitTopic(t, procs[0], "guarded", 1)
	_, leader := isrOf(t, procs[0], "guarded", 0)
	followers := allBut(procs, procs[leader-1])
	t.Cleanup(func() {
		for _, f := range followers {
			f.cmd.Process.Signal(syscall.SIGCONT)
		}
	})
	// Not idempotent: an idempotent producer cannot give up on a sent batch.
	prod := clusterClient(t, procs, kgo.DefaultProduceTopic("guarded"), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DisableIdempotentWrite(), kgo.RecordRetries(0), kgo.ProduceRequestTimeout(3*time.Second))
	produce := func(v string) error {
		pctx, pcancel := context.WithTimeout(ctx, 8*time.Second)
		defer pcancel()
		return prod.ProduceSync(pctx, &kgo.Record{Value: []byte(v)}).FirstErr()
	}
	if err := produce("all three in sync"); err != nil {
		t.Fatal(err)
	}
	waitISR := func(want int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			isr, _ := isrOf(t, procs[leader-1], "guarded", 0)
			if len(isr) == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("ISR = %v, want %d members", isr, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// One follower stops: after the lag time the leader drops it from the
	// ISR (the other two still form a Raft quorum), and with
	// min.insync.replicas = 3 acks=all is refused.
	followers[0].cmd.Process.Signal(syscall.SIGSTOP)
	waitISR(2)
	if err := produce("two in sync"); !errors.Is(err, kerr.NotEnoughReplicas) {
		t.Fatalf("acks=all with 2 of min 3 in sync = %v, want NOT_ENOUGH_REPLICAS", err)
	}
	// It comes back, catches up, rejoins, and writes are accepted again.
	followers[0].cmd.Process.Signal(syscall.SIGCONT)
	resumed := time.Now()
	waitISR(3)
	t.Logf("the follower was back in the ISR %v after SIGCONT", time.Since(resumed).Round(time.Millisecond))
	if err := produce("three again"); err != nil {
		t.Fatalf("acks=all after the follower rejoined = %v", err)
	}

	// Both followers stop: the Raft quorum is gone with them, so the leader
	// can neither shrink the ISR to itself nor take writes.
	followers[0].cmd.Process.Signal(syscall.SIGSTOP)
	followers[1].cmd.Process.Signal(syscall.SIGSTOP)
	if err := produce("alone"); err == nil {
		t.Fatal("acks=all produce succeeded with both followers stopped")
	}
	if isr, _ := isrOf(t, procs[leader-1], "guarded", 0); len(isr) != 3 {
		t.Errorf("ISR without a quorum = %v, want it unchanged", isr)
	}
	followers[0].cmd.Process.Signal(syscall.SIGCONT)
	followers[1].cmd.Process.Signal(syscall.SIGCONT)
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := produce("back")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("acks=all after both came back = %v", err)
		}
	}
}

// moveLeader asks a node's admin API to hand a partition to another node.
func moveLeader(t *testing.T, p *proc, topic string, partition int, to uint64) {
	t.Helper()
	body := strings.NewReader(fmt.Sprintf(`{"leader": %d}`, to))
	resp, err := http.Post(fmt.Sprintf("http://%s/v1/topics/%s/partitions/%d/leader", p.admin, topic, partition), "application/json", body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("move leader of %s-%d to %d: %s %s", topic, partition, to, resp.Status, b)
	}
}

// TestReplication_plannedLeaderMoveLosesAndDuplicatesNothing moves a
// partition's leadership back and forth with Raft commands while an
// idempotent acks=all producer runs: every record arrives exactly once and
// the producer sees no error.
func TestReplication_plannedLeaderMoveLosesAndDuplicatesNothing(t *testing.T) {
	procs := newProcCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := kadm.NewClient(clusterClient(t, procs)).CreateTopic(ctx, 1, 3, nil, "moving"); err != nil {
		t.Fatal(err)
	}
	waitTopic(t, procs[0], "moving", 1)
	prod := clusterClient(t, procs, kgo.DefaultProduceTopic("moving"), kgo.RequiredAcks(kgo.AllISRAcks()))
	var failures atomic.Int64
	var acked atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	const total = 4000
	go func() {
		defer close(done)
		for i := 0; i < total; i++ {
			select {
			case <-stop:
				return
			default:
			}
			prod.Produce(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}, func(_ *kgo.Record, err error) {
				if err != nil {
					failures.Add(1)
				} else {
					acked.Add(1)
				}
			})
			if i%50 == 0 {
				time.Sleep(5 * time.Millisecond)
			}
		}
	}()
	for move := range 4 {
		time.Sleep(500 * time.Millisecond)
		isr, leader := isrOf(t, procs[0], "moving", 0)
		var to uint64
		for _, r := range isr {
			if r != leader {
				to = r
				break
			}
		}
		if to == 0 {
			t.Fatalf("move %d: no other in-sync replica in %v", move, isr)
		}
		moveLeader(t, procs[0], "moving", 0, to)
	}
	<-done
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	close(stop)
	if failures.Load() != 0 {
		t.Fatalf("%d produce errors while the leader moved", failures.Load())
	}
	cons := clusterClient(t, procs, kgo.ConsumeTopics("moving"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]int{}
	for len(seen) < total {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume after %d: %v", len(seen), err)
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
	}
	for v, n := range seen {
		if n != 1 {
			t.Errorf("record %s read %d times", v, n)
		}
	}
	t.Logf("%d records acknowledged, %d read, leader moved 4 times", acked.Load(), len(seen))
}

// TestReplication_divergentTailIsTruncated crafts a divergent log: the
// leader takes acks=1 writes its followers never fetch (both are stopped
// and it has not yet noticed it lost the quorum), then it is stopped and
// leadership moves to a follower, which takes new writes. When the old
// leader comes back it must truncate its unreplicated tail and end with the
// same log as the others.
func TestReplication_divergentTailIsTruncated(t *testing.T) {
	procs := newProcCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := kadm.NewClient(clusterClient(t, procs)).CreateTopic(ctx, 1, 3, nil, "diverge"); err != nil {
		t.Fatal(err)
	}
	waitTopic(t, procs[0], "diverge", 1)
	_, leaderID := isrOf(t, procs[0], "diverge", 0)
	old := procs[leaderID-1]
	others := allBut(procs, old)
	t.Cleanup(func() {
		for _, p := range procs {
			p.cmd.Process.Signal(syscall.SIGCONT)
		}
	})
	all := clusterClient(t, procs, kgo.DefaultProduceTopic("diverge"), kgo.RequiredAcks(kgo.AllISRAcks()))
	for i := range 20 {
		if err := all.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("committed-%d", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	// Followers stop; the old leader takes a few acks=1 writes alone.
	for _, p := range others {
		p.cmd.Process.Signal(syscall.SIGSTOP)
	}
	// Let the followers' parked fetches (500 ms long polls) end first, so
	// no answer with the writes below sits in a stopped follower's socket.
	time.Sleep(700 * time.Millisecond)
	lone := kgoClient(t, old.kafka, kgo.DefaultProduceTopic("diverge"), kgo.RequiredAcks(kgo.LeaderAck()),
		kgo.DisableIdempotentWrite(), kgo.RecordRetries(0))
	for i := range 5 {
		if err := lone.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("divergent-%d", i))}).FirstErr(); err != nil {
			t.Fatalf("acks=1 write to the lone leader: %v", err)
		}
	}
	lone.Close()
	before := len(partitionLogs(t, old, "diverge", 0))

	// The old leader stops; the others come back and one of them leads.
	old.cmd.Process.Signal(syscall.SIGSTOP)
	for _, p := range others {
		p.cmd.Process.Signal(syscall.SIGCONT)
	}
	moveLeader(t, others[0], "diverge", 0, uint64(others[0].id))
	fresh := clusterClient(t, others, kgo.DefaultProduceTopic("diverge"), kgo.RequiredAcks(kgo.LeaderAck()),
		kgo.DisableIdempotentWrite())
	for i := range 5 {
		if err := fresh.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("new-leader-%d", i))}).FirstErr(); err != nil {
			t.Fatalf("write to the new leader: %v", err)
		}
	}

	// The old leader returns, finds it follows, truncates and catches up.
	old.cmd.Process.Signal(syscall.SIGCONT)
	deadline := time.Now().Add(30 * time.Second)
	for {
		a, b := partitionLogs(t, old, "diverge", 0), partitionLogs(t, others[0], "diverge", 0)
		if bytes.Equal(a, b) && len(a) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("old leader's log (%d bytes, %d before) never matched the new leader's (%d bytes)", len(a), before, len(b))
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The logs are now byte-equal, so whatever the new leader never had is
	// gone from the old one. A follower may still have received a divergent
	// record (an answer already in its socket when it was stopped); then
	// that record is committed, and only the rest had to be truncated.
	kept := bytes.Count(partitionLogs(t, others[0], "diverge", 0), []byte("divergent-"))
	if kept == 5 {
		t.Logf("the followers received every acks=1 record before stopping: no divergence to truncate this run")
	} else {
		t.Logf("%d of 5 acks=1 records survived; the old leader truncated the other %d", kept, 5-kept)
	}
	if !bytes.Contains(partitionLogs(t, old, "diverge", 0), []byte("new-leader-4")) {
		t.Errorf("the old leader did not catch up with the new leader's writes")
	}
}

// TestReplication_minInsyncTwoWithBothFollowersStopped is the case with the
// Raft quorum intact: on five nodes, stopping a partition's two followers
// leaves three nodes, so the leader can shrink the ISR to itself, and with
// min.insync.replicas = 2 acks=all is refused with NOT_ENOUGH_REPLICAS
// until a follower is back in sync. (On three nodes the same stop also
// takes the quorum, and the leader stops taking writes altogether: see
// TestReplication_stoppedFollowersLeaveTheISRAndMinInsyncRefusesWrites.)
func TestReplication_minInsyncTwoWithBothFollowersStopped(t *testing.T) {
	procs := newProcCluster(t, 5, `replica_lag_time = "2s"`)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := kadm.NewClient(clusterClient(t, procs)).CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": kadm.StringPtr("2")}, "five"); err != nil {
		t.Fatal(err)
	}
	waitTopic(t, procs[0], "five", 1)
	isr, leader := isrOf(t, procs[0], "five", 0)
	var followers []*proc
	for _, id := range isr {
		if id != leader {
			followers = append(followers, procs[id-1])
		}
	}
	t.Cleanup(func() {
		for _, f := range followers {
			f.cmd.Process.Signal(syscall.SIGCONT)
		}
	})
	prod := clusterClient(t, procs, kgo.DefaultProduceTopic("five"), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DisableIdempotentWrite(), kgo.RecordRetries(0), kgo.ProduceRequestTimeout(3*time.Second))
	produce := func(v string) error {
		pctx, pcancel := context.WithTimeout(ctx, 8*time.Second)
		defer pcancel()
		return prod.ProduceSync(pctx, &kgo.Record{Value: []byte(v)}).FirstErr()
	}
	waitISR := func(want int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			got, _ := isrOf(t, procs[leader-1], "five", 0)
			if len(got) == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("ISR = %v, want %d members", got, want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if err := produce("all in sync"); err != nil {
		t.Fatal(err)
	}
	for _, f := range followers {
		f.cmd.Process.Signal(syscall.SIGSTOP)
	}
	waitISR(1)
	if err := produce("alone"); !errors.Is(err, kerr.NotEnoughReplicas) {
		t.Fatalf("acks=all with only the leader in sync = %v, want NOT_ENOUGH_REPLICAS", err)
	}
	followers[0].cmd.Process.Signal(syscall.SIGCONT)
	waitISR(2)
	if err := produce("two in sync"); err != nil {
		t.Fatalf("acks=all with a follower back = %v", err)
	}
	followers[1].cmd.Process.Signal(syscall.SIGCONT)
	waitISR(3)
}

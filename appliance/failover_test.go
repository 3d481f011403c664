package appliance_test

import (
	"bytes"
	"context"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/reeve-edge/reeve/api"
	"github.com/reeve-edge/reeve/policy"
)

// electionConfig makes elections quick for tests, yet slow enough that a
// loaded CI machine (race detector, three processes on two cores) does not
// starve heartbeats into a false failover: heartbeats every 400 ms, a leader
// declared dead after 2 s of silence.
var electionConfig = []string{`replica_lag_time = "2s"`, "[election]", `heartbeat_interval = "400ms"`, `leader_timeout = "2s"`}

const testLeaderTimeout = 2 * time.Second

// partitionLeaders returns each partition's leader and leader epoch as a
// node's admin API reports them (its local view), or false if it cannot.
func partitionLeaders(p *proc, topic string) ([][2]int64, bool) {
	ps, err := partitionViews(p, topic)
	if err != nil {
		return nil, false
	}
	var out [][2]int64
	for _, v := range ps {
		out = append(out, [2]int64{int64(v.Leader), int64(v.LeaderEpoch)})
	}
	return out, true
}

// leaderOf returns partition 0's leader and leader epoch (0, -1 if unknown).
func leaderOf(t *testing.T, p *proc, topic string) (uint64, int32) {
	t.Helper()
	ls, ok := partitionLeaders(p, topic)
	if !ok || len(ls) == 0 {
		return 0, -1
	}
	return uint64(ls[0][0]), int32(ls[0][1])
}

// TestFailover_killedLeaderIsReplacedAndNothingIsLost is the seed's test
// plan on real processes: 100 records with acks=all, SIGKILL the leader, a
// new leader from the ISR within the timeout plus 2 s, 100 more records
// through the same client, all 200 consumed with none lost or duplicated,
// and the leader epoch one higher.
func TestFailover_killedLeaderIsReplacedAndNothingIsLost(t *testing.T) {
	procs := newProcCluster(t, 3, electionConfig...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	createTopic(t, procs, "failover", 1, 3)
	waitTopic(t, procs[0], "failover", 1)
	if leader, _ := leaderOf(t, procs[0], "failover"); leader != 1 {
		moveLeader(t, procs[0], "failover", 0, 1)
	}
	_, epoch := leaderOf(t, procs[0], "failover")
	prod := clusterClient(t, procs, kgo.DefaultProduceTopic("failover"), kgo.RequiredAcks(kgo.AllISRAcks()))
	for i := range 100 {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	procs[0].kill(t, syscall.SIGKILL)
	killed := time.Now()
	var newLeader uint64
	var newEpoch int32
	for {
		newLeader, newEpoch = leaderOf(t, procs[1], "failover")
		if newLeader != 0 && newLeader != 1 {
			break
		}
		if time.Since(killed) > testLeaderTimeout+2*time.Second {
			t.Fatalf("no new leader %v after the leader was killed (leader %d)", time.Since(killed), newLeader)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("node %d leads at epoch %d, %v after the kill", newLeader, newEpoch, time.Since(killed).Round(time.Millisecond))
	// The controller that decided logged it.
	logged := false
	for _, p := range procs[1:] {
		for _, r := range decisionLog(p) {
			if r.Topic == "failover" && r.Reason == string(policy.ReasonLeaderTimeout) && r.To == newLeader && r.Committed {
				logged = true
			}
		}
	}
	if !logged {
		t.Errorf("no decision-log record of the election on the surviving nodes")
	}
	// reeve status shows the dead node and, on the controller, the election.
	shown := false
	for _, p := range procs[1:] {
		out, errOut, status := run(t, "status", "--admin", p.admin)
		if status != 0 {
			t.Fatalf("reeve status on node %d = %d, %s", p.id, status, errOut)
		}
		if !regexp.MustCompile(`(?m)^1\s+active\s+no\s`).MatchString(out) {
			t.Errorf("reeve status on node %d does not show node 1 dead:\n%s", p.id, out)
		}
		shown = shown || regexp.MustCompile(`failover-0\s+leader_timeout\s+1\s+`+strconv.FormatUint(newLeader, 10)+`\s.*committed`).MatchString(out)
	}
	if !shown {
		t.Errorf("reeve status shows the election on neither survivor")
	}
	if newEpoch != epoch+1 {
		t.Errorf("leader epoch went from %d to %d, want exactly one more", epoch, newEpoch)
	}

	for i := 100; i < 200; i++ {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatalf("produce %d after the failover: %v", i, err)
		}
	}
	cons := clusterClient(t, procs[1:], kgo.ConsumeTopics("failover"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]int{}
	for len(seen) < 200 {
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
	// A manual election hands leadership to the first live in-sync replica
	// in preference order, through the CLI.
	out, errOut, status := run(t, "elect", "--topic", "failover", "--partition", "0", "--admin", procs[1].admin)
	if status != 0 || !strings.Contains(out, "failover-0: leader") {
		t.Errorf("reeve elect = status %d, %q %q", status, out, errOut)
	}
	if _, errOut, status := run(t, "elect", "--topic", "failover", "--partition", "0", "--to", "1", "--admin", procs[1].admin); status != 1 || !strings.Contains(errOut, "not alive") {
		t.Errorf("reeve elect --to a dead node = status %d, %q; want refused", status, errOut)
	}
}

// TestFailover_idleTopicKeepsItsLeader checks liveness comes from
// heartbeats, not from produce traffic: a topic nobody writes to keeps its
// leader over six election timeouts.
func TestFailover_idleTopicKeepsItsLeader(t *testing.T) {
	procs := newProcCluster(t, 3, electionConfig...)
	createTopic(t, procs, "idle", 3, 3)
	waitTopic(t, procs[0], "idle", 3)
	before := describeEpochs(t, procs[0], "idle")
	time.Sleep(6 * testLeaderTimeout)
	after := describeEpochs(t, procs[2], "idle")
	for i := range before {
		if before[i] != after[i] {
			t.Errorf("partition %d: leader/epoch %v became %v with no traffic and no failure", i, before[i], after[i])
		}
	}
}

func describeEpochs(t *testing.T, p *proc, topic string) [][2]int64 {
	t.Helper()
	ls, ok := partitionLeaders(p, topic)
	if !ok {
		t.Fatalf("describe %s on node %d failed", topic, p.id)
	}
	return ls
}

// TestFailover_rollingRestartWithSIGTERMLosesNothing restarts every node in
// turn with SIGTERM (a controlled shutdown that moves leadership first)
// while an idempotent acks=all producer and a group consumer run: the
// producer sees no error, and the log holds every record exactly once.
func TestFailover_rollingRestartWithSIGTERMLosesNothing(t *testing.T) {
	procs := newProcCluster(t, 3, electionConfig...)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	createTopic(t, procs, "rolling", 3, 3)
	waitTopic(t, procs[0], "rolling", 3)
	prod := clusterClient(t, procs, kgo.DefaultProduceTopic("rolling"), kgo.RequiredAcks(kgo.AllISRAcks()))
	group := clusterClient(t, procs, kgo.ConsumerGroup("rollers"), kgo.ConsumeTopics("rolling"))
	go func() {
		for ctx.Err() == nil {
			if fs := group.PollFetches(ctx); fs.IsClientClosed() {
				return
			}
		}
	}()
	var failures, sent atomic.Int64
	stop := make(chan struct{})
	producing := make(chan struct{})
	go func() {
		defer close(producing)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			sent.Add(1)
			prod.Produce(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}, func(_ *kgo.Record, err error) {
				if err != nil {
					failures.Add(1)
				}
			})
		}
	}()
	fullISR := func() {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			ok := true
			for part := range 3 {
				if isr, _ := isrOf(t, procs[0], "rolling", part); len(isr) != 3 {
					ok = false
				}
			}
			if ok {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("ISRs never became full again")
	}
	for _, p := range procs {
		time.Sleep(500 * time.Millisecond)
		p.kill(t, syscall.SIGTERM)
		p.start(t)
		p.waitReady(t)
		fullISR()
	}
	close(stop)
	<-producing
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if failures.Load() != 0 {
		t.Fatalf("%d of %d produces failed during the rolling restart", failures.Load(), sent.Load())
	}
	cons := clusterClient(t, procs, kgo.ConsumeTopics("rolling"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]int{}
	for int64(len(seen)) < sent.Load() {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume after %d of %d: %v", len(seen), sent.Load(), err)
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
	}
	for v, n := range seen {
		if n != 1 {
			t.Errorf("record %s stored %d times", v, n)
		}
	}
	t.Logf("%d records through three controlled restarts, none lost or duplicated", len(seen))
}

// TestFailover_frozenLeaderReturnsAsFollower freezes the leader with
// SIGSTOP until it is replaced, then resumes it: it must come back as a
// follower (no write taken on its stale view), catch up, rejoin the ISR and
// end with the new leader's log.
func TestFailover_frozenLeaderReturnsAsFollower(t *testing.T) {
	procs := newProcCluster(t, 3, electionConfig...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	createTopic(t, procs, "frozen", 1, 3)
	waitTopic(t, procs[0], "frozen", 1)
	leader, _ := leaderOf(t, procs[0], "frozen")
	old := procs[leader-1]
	others := allBut(procs, old)
	t.Cleanup(func() { old.cmd.Process.Signal(syscall.SIGCONT) })
	prod := clusterClient(t, procs, kgo.DefaultProduceTopic("frozen"), kgo.RequiredAcks(kgo.AllISRAcks()))
	for i := range 50 {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("before-" + strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	old.cmd.Process.Signal(syscall.SIGSTOP)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if l, _ := leaderOf(t, others[0], "frozen"); l != 0 && l != leader {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the frozen leader was never replaced")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i := range 50 {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("after-" + strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatalf("produce on the new leader: %v", err)
		}
	}
	// Resumed, the old leader must refuse a write on its stale view.
	old.cmd.Process.Signal(syscall.SIGCONT)
	stale := kgoClient(t, old.kafka, kgo.DefaultProduceTopic("frozen"), kgo.RequiredAcks(kgo.LeaderAck()),
		kgo.DisableIdempotentWrite(), kgo.RecordRetries(0), kgo.MetadataMinAge(10*time.Second))
	sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
	defer scancel()
	if err := stale.ProduceSync(sctx, &kgo.Record{Value: []byte("stale")}).FirstErr(); err == nil {
		// The client may have learned the new leader first; then the write
		// is a legitimate one, on the new leader.
		t.Logf("the write after resuming was accepted (by the new leader)")
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		isr, _ := isrOf(t, others[0], "frozen", 0)
		a, b := partitionLogs(t, old, "frozen", 0), partitionLogs(t, others[0], "frozen", 0)
		if len(isr) == 3 && bytes.Equal(a, b) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the old leader never caught up and rejoined: ISR %v, logs %d vs %d bytes", isr, len(a), len(b))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestFailover_preferredLeaderReturnsAfterHoldDown kills a partition's
// preferred leader, restarts it, and checks it does not take leadership
// back before it has been in sync for the hold-down, then does, by a
// rebalance, while a producer sees no error.
func TestFailover_preferredLeaderReturnsAfterHoldDown(t *testing.T) {
	cfg := append(append([]string{}, electionConfig...), `rebalance_interval = "1s"`, `hold_down = "6s"`)
	procs := newProcCluster(t, 3, cfg...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	createTopic(t, procs, "prefer", 1, 3)
	waitTopic(t, procs[0], "prefer", 1)
	preferred, _ := leaderOf(t, procs[0], "prefer") // a new topic's leader is its preferred replica
	pp := procs[preferred-1]
	var other *proc
	for _, p := range procs {
		if p != pp {
			other = p
			break
		}
	}
	prod := clusterClient(t, procs, kgo.DefaultProduceTopic("prefer"), kgo.RequiredAcks(kgo.AllISRAcks()))
	var failures, sent atomic.Int64
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			sent.Add(1)
			prod.Produce(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}, func(_ *kgo.Record, err error) {
				if err != nil {
					failures.Add(1)
				}
			})
		}
	}()
	pp.kill(t, syscall.SIGKILL)
	waitLeader := func(cond func(uint64) bool, within time.Duration, what string) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			if l, _ := leaderOf(t, other, "prefer"); l != 0 && cond(l) {
				return
			}
			if time.Now().After(deadline) {
				l, _ := leaderOf(t, other, "prefer")
				t.Fatalf("%s: leader is %d after %v", what, l, within)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitLeader(func(l uint64) bool { return l != preferred }, testLeaderTimeout+3*time.Second, "failover")
	pp.start(t)
	pp.waitReady(t)
	// Back in sync, it must still wait out the hold-down.
	deadline := time.Now().Add(20 * time.Second)
	for {
		isr, _ := isrOf(t, other, "prefer", 0)
		if len(isr) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restarted node never rejoined the ISR: %v", isr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	rejoined := time.Now()
	time.Sleep(2 * time.Second)
	if l, _ := leaderOf(t, other, "prefer"); l == preferred {
		t.Fatalf("the preferred leader took leadership back %v after rejoining, within the 6s hold-down", time.Since(rejoined))
	}
	waitLeader(func(l uint64) bool { return l == preferred }, 20*time.Second, "rebalance back to the preferred replica")
	t.Logf("preferred node %d leads again %v after rejoining the ISR", preferred, time.Since(rejoined).Round(100*time.Millisecond))
	time.Sleep(500 * time.Millisecond)
	close(stop)
	<-stopped
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if failures.Load() != 0 {
		t.Errorf("%d of %d produces failed", failures.Load(), sent.Load())
	}
}

// TestFailover_noEligibleLeaderTakesThePartitionOffline pins what happens
// when the only in-sync replica dies: the partition goes offline (leader
// -1, LEADER_NOT_AVAILABLE in Kafka metadata, listed by reeve status)
// rather than electing a live replica that is missing acknowledged
// records; when the in-sync replica returns it leads again.
func TestFailover_noEligibleLeaderTakesThePartitionOffline(t *testing.T) {
	procs := newProcCluster(t, 3, electionConfig...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	createTopic(t, procs, "lonely", 1, 2)
	d := waitTopic(t, procs[0], "lonely", 1)
	leader := procs[d.PartitionStates[0].Leader-1]
	var follower, other *proc
	for _, p := range procs {
		switch {
		case p == leader:
		case slices.Contains(d.PartitionStates[0].ISR, uint64(p.id)) && follower == nil:
			follower = p
		default:
			other = p
		}
	}
	prod := clusterClient(t, procs, kgo.DefaultProduceTopic("lonely"), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("acked")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// The follower freezes and drops out of the ISR, the leader keeps
	// taking writes alone.
	t.Cleanup(func() { follower.cmd.Process.Signal(syscall.SIGCONT) })
	if err := follower.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		if d, _ := describe(t, other, "lonely", true); len(d.PartitionStates) == 1 && len(d.PartitionStates[0].ISR) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ISR did not shrink to the leader with node %d frozen", follower.id)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("only on the leader")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// The leader dies; the follower wakes without the last record.
	leader.kill(t, syscall.SIGKILL)
	if err := follower.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	meta := func() (int32, int16) {
		cl := kgoClient(t, other.kafka)
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr("lonely")
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			return -2, 0
		}
		p := resp.Topics[0].Partitions[0]
		return p.Leader, p.ErrorCode
	}
	for deadline := time.Now().Add(testLeaderTimeout + 20*time.Second); ; {
		if l, code := meta(); l == -1 && code == kerr.LeaderNotAvailable.Code {
			break
		} else if l == int32(follower.id) {
			t.Fatalf("node %d, out of sync, was elected: acknowledged records would be lost", follower.id)
		}
		if time.Now().After(deadline) {
			l, code := meta()
			t.Fatalf("Kafka metadata for lonely-0 = leader %d, error %d; want -1, LEADER_NOT_AVAILABLE", l, code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, errOut, status := run(t, "status", "--admin", other.admin)
	if status != 0 || !strings.Contains(out, "offline 1") || !strings.Contains(out, "lonely-0") {
		t.Errorf("reeve status = %d, %s %s; want lonely-0 listed offline", status, out, errOut)
	}
	// The in-sync replica returns and leads again, with every record.
	leader.start(t)
	for deadline := time.Now().Add(30 * time.Second); ; {
		if l, code := meta(); l == int32(leader.id) && code == 0 {
			break
		}
		if time.Now().After(deadline) {
			l, code := meta()
			t.Fatalf("after node %d returned, lonely-0 = leader %d, error %d", leader.id, l, code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cons := clusterClient(t, procs, kgo.ConsumeTopics("lonely"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []string
	for len(got) < 2 {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if !slices.Equal(got, []string{"acked", "only on the leader"}) {
		t.Errorf("records = %q", got)
	}
}

// decisionLog reads a node's decision log (GET /v1/elections); nil if the
// node does not answer.
func decisionLog(p *proc) []api.Election {
	var recs []api.Election
	if code, err := httpGetJSON("http://"+p.admin+"/v1/elections", &recs); err != nil || code != 200 {
		return nil
	}
	return recs
}

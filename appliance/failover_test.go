package appliance_test

import (
	"context"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// electionConfig makes elections quick for tests: heartbeats every 250 ms,
// a leader declared dead after 1 s of silence.
var electionConfig = []string{`replica_lag_time = "2s"`, "[election]", `heartbeat_interval = "250ms"`, `leader_timeout = "1s"`}

// leaderOf returns a partition's leader and leader epoch as a node sees it.
func leaderOf(t *testing.T, p *proc, topic string) (uint64, int32) {
	t.Helper()
	var d struct {
		PartitionStates []struct {
			Leader      uint64 `json:"leader"`
			LeaderEpoch int32  `json:"leader_epoch"`
		} `json:"partition_states"`
	}
	resp, err := httpGetJSON("http://"+p.admin+"/v1/topics/"+topic+"?stale=true", &d)
	if err != nil || resp != 200 || len(d.PartitionStates) == 0 {
		return 0, -1
	}
	return d.PartitionStates[0].Leader, d.PartitionStates[0].LeaderEpoch
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
	if _, err := kadm.NewClient(clusterClient(t, procs)).CreateTopic(ctx, 1, 3, nil, "failover"); err != nil {
		t.Fatal(err)
	}
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
		if time.Since(killed) > 3*time.Second { // leader_timeout 1 s + 2 s
			t.Fatalf("no new leader %v after the leader was killed (leader %d)", time.Since(killed), newLeader)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("node %d leads at epoch %d, %v after the kill", newLeader, newEpoch, time.Since(killed).Round(time.Millisecond))
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
}

// TestFailover_idleTopicKeepsItsLeader checks liveness comes from
// heartbeats, not from produce traffic: a topic nobody writes to keeps its
// leader over six election timeouts.
func TestFailover_idleTopicKeepsItsLeader(t *testing.T) {
	procs := newProcCluster(t, 3, electionConfig...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := kadm.NewClient(clusterClient(t, procs)).CreateTopic(ctx, 3, 3, nil, "idle"); err != nil {
		t.Fatal(err)
	}
	waitTopic(t, procs[0], "idle", 3)
	before := describeEpochs(t, procs[0], "idle")
	time.Sleep(6 * time.Second) // six leader timeouts
	after := describeEpochs(t, procs[2], "idle")
	for i := range before {
		if before[i] != after[i] {
			t.Errorf("partition %d: leader/epoch %v became %v with no traffic and no failure", i, before[i], after[i])
		}
	}
}

func describeEpochs(t *testing.T, p *proc, topic string) [][2]int64 {
	t.Helper()
	var d struct {
		PartitionStates []struct {
			Leader      uint64 `json:"leader"`
			LeaderEpoch int32  `json:"leader_epoch"`
		} `json:"partition_states"`
	}
	if code, err := httpGetJSON("http://"+p.admin+"/v1/topics/"+topic+"?stale=true", &d); err != nil || code != 200 {
		t.Fatalf("describe %s: %d %v", topic, code, err)
	}
	var out [][2]int64
	for _, ps := range d.PartitionStates {
		out = append(out, [2]int64{int64(ps.Leader), int64(ps.LeaderEpoch)})
	}
	return out
}

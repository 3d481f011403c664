package appliance_test

import (
	"context"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// listOffsetAt sends one ListOffsets for topic's partition 0, latest, to
// node p itself (kgo would route it to the partition's leader) with the
// given replica id and current leader epoch, through a client seeded with p
// alone.
func listOffsetAt(t *testing.T, ctx context.Context, cl *kgo.Client, p *proc, topic string, replica, epoch int32) (kmsg.ListOffsetsResponseTopicPartition, error) {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = replica
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp, rp.CurrentLeaderEpoch = -1, epoch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl.Broker(p.id))
	if err != nil {
		return kmsg.ListOffsetsResponseTopicPartition{}, err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("node %d: malformed ListOffsets answer %+v", p.id, resp)
	}
	return resp.Topics[0].Partitions[0], nil
}

// waitLogEnd waits until node p answers replica id -2 with log end offset
// want, and returns its last answer.
func waitLogEnd(t *testing.T, ctx context.Context, p *proc, topic string, want int64) kmsg.ListOffsetsResponseTopicPartition {
	t.Helper()
	cl := kgoClient(t, p.kafka)
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, err := listOffsetAt(t, ctx, cl, p, topic, -2, -1)
		if err == nil && got.ErrorCode == 0 && got.Offset == want {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d: replica -2 latest = %+v, %v; want log end offset %d", p.id, got, err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLEO_followerAnswersReplicaListOffsetsWithItsLogEnd: on three nodes
// with an RF 3 topic, a follower answers ListOffsets with replica id -2 from
// its own log (its log end offset, with the leader epoch it knows) while a
// consumer's request to it still gets NOT_LEADER_OR_FOLLOWER; once the
// leader is killed, both survivors still answer with their log ends.
func TestLEO_followerAnswersReplicaListOffsetsWithItsLogEnd(t *testing.T) {
	procs := newProcCluster(t, 3, electionConfig...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	createTopic(t, procs, "leo", 1, 3)
	waitTopic(t, procs[0], "leo", 1)
	prod := clusterClient(t, procs, kgo.DefaultProduceTopic("leo"), kgo.RequiredAcks(kgo.AllISRAcks()))
	const n = 300
	for i := 0; i < n; i += 50 {
		var rs []*kgo.Record
		for j := range 50 {
			rs = append(rs, &kgo.Record{Value: []byte("record-" + strconv.Itoa(i+j))})
		}
		if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}

	var leader uint64
	var epoch int32
	for deadline := time.Now().Add(10 * time.Second); leader == 0; time.Sleep(50 * time.Millisecond) {
		if leader, epoch = leaderOf(t, procs[0], "leo"); leader == 0 && time.Now().After(deadline) {
			t.Fatal("no leader for leo-0")
		}
	}
	followers := allBut(procs, procs[leader-1])
	f := followers[0]

	fc := kgoClient(t, f.kafka)
	got := waitLogEnd(t, ctx, f, "leo", n)
	if got.LeaderEpoch != epoch {
		t.Errorf("follower %d: leader epoch %d, want %d", f.id, got.LeaderEpoch, epoch)
	}
	waitLogEnd(t, ctx, procs[leader-1], "leo", n)
	if got, err := listOffsetAt(t, ctx, fc, f, "leo", -2, epoch); err != nil || got.ErrorCode != 0 || got.Offset != n {
		t.Errorf("follower %d, replica -2 at the current epoch = %+v, %v; want offset %d", f.id, got, err, n)
	}
	if got, err := listOffsetAt(t, ctx, fc, f, "leo", -2, epoch+1); err != nil || got.ErrorCode != kerr.UnknownLeaderEpoch.Code {
		t.Errorf("follower %d, replica -2 at a newer epoch = %+v, %v; want UNKNOWN_LEADER_EPOCH", f.id, got, err)
	}
	if got, err := listOffsetAt(t, ctx, fc, f, "leo", -1, -1); err != nil || got.ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Errorf("follower %d, consumer request = %+v, %v; want NOT_LEADER_OR_FOLLOWER", f.id, got, err)
	}

	// The case elections need it for: the leader is gone, and each
	// survivor reports where its log ends.
	procs[leader-1].kill(t, syscall.SIGKILL)
	for _, p := range followers {
		waitLogEnd(t, ctx, p, "leo", n)
	}
}

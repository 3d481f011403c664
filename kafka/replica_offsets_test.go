package kafka

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// listAs sends one ListOffsets for topic's partition 0 straight to node 1
// (not to the partition's leader, as kgo would) and returns its answer.
func listAs(t *testing.T, ctx context.Context, c *kgo.Client, topic string, replica int32, ts int64, epoch int32) kmsg.ListOffsetsResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = replica
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp, rp.CurrentLeaderEpoch = ts, epoch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, c.Broker(1))
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0]
}

// A follower answers replica id -2 from its own log, latest being its log
// end offset even past the high watermark; a consumer's request still gets
// NOT_LEADER_OR_FOLLOWER. ReplicaLogEndOffsets reads the same, locally and
// over the network.
func TestListOffsets_debuggingReplicaReadsTheFollowersLogEnd(t *testing.T) {
	s, mc := startServer(t)
	ctx := ctxT(t)
	c := newClient(t, s, kgo.DefaultProduceTopic("leo"), kgo.ProducerLinger(0))
	for _, name := range []string{"leo", "elsewhere"} {
		if _, err := mc.CreateTopic(ctx, TopicSpec{Name: name, Partitions: 1, ReplicationFactor: 1}); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 {
		if err := c.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if p := listAs(t, ctx, c, "leo", -2, -1, -1); p.ErrorCode != 0 || p.Offset != 5 || p.LeaderEpoch != 0 {
		t.Fatalf("leader, replica -2 latest = %+v, want offset 5 epoch 0", p)
	}

	// Node 2 leads now (epoch 1); node 1 stays a replica and follows.
	mc.setLeader("leo", 0, 2)
	mc.mu.Lock()
	other := mc.topics["elsewhere"]
	other.Partitions[0].Leader, other.Partitions[0].Replicas, other.Partitions[0].ISR = 2, []int32{2}, []int32{2}
	mc.mu.Unlock()
	s.MetadataChanged()
	s.parts.refresh()
	tp, _ := s.parts.topic("leo")
	p, err := s.parts.get(tp, 0)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); p.leading(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("node 1 still leads after the leader moved")
		}
	}
	// Records past the HW, as a follower holds before the leader's next
	// fetch answer brings the HW up.
	if _, _, err := p.log.Append(testBatch(t, 3), 1); err != nil {
		t.Fatal(err)
	}
	if hw, leo := p.highWatermark(), p.log.LogEndOffset(); hw >= leo || leo != 8 {
		t.Fatalf("HW %d, LEO %d: want HW below LEO 8", hw, leo)
	}

	tests := []struct {
		name    string
		replica int32
		ts      int64
		epoch   int32
		code    int16
		offset  int64
	}{
		{"latest is the log end", -2, -1, -1, 0, 8},
		{"current epoch matches", -2, -1, 1, 0, 8},
		{"earliest", -2, -2, -1, 0, 0},
		{"old epoch is fenced", -2, -1, 0, kerr.FencedLeaderEpoch.Code, 0},
		{"newer epoch is unknown", -2, -1, 2, kerr.UnknownLeaderEpoch.Code, 0},
		{"consumer is refused", -1, -1, -1, kerr.NotLeaderForPartition.Code, 0},
		{"follower broker id is refused", 3, -1, -1, kerr.NotLeaderForPartition.Code, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := listAs(t, ctx, c, "leo", tt.replica, tt.ts, tt.epoch)
			if got.ErrorCode != tt.code || (tt.code == 0 && (got.Offset != tt.offset || got.LeaderEpoch != 1)) {
				t.Errorf("replica %d, timestamp %d, epoch %d = %+v, want code %d offset %d epoch 1",
					tt.replica, tt.ts, tt.epoch, got, tt.code, tt.offset)
			}
		})
	}
	if got := listAs(t, ctx, c, "elsewhere", -2, -1, -1); got.ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Errorf("replica -2 on a node without a replica = %+v, want NOT_LEADER_OR_FOLLOWER", got)
	}

	parts := []TopicPartition{{"leo", 0}, {"elsewhere", 0}, {"nosuch", 0}, {"leo", 0}}
	check := func(name string, m map[TopicPartition]int64, err error) {
		t.Helper()
		if len(m) != 1 || m[TopicPartition{"leo", 0}] != 8 {
			t.Errorf("%s: offsets %v, want only leo-0 at 8", name, m)
		}
		if !errors.Is(err, kerr.NotLeaderForPartition) || !errors.Is(err, kerr.UnknownTopicOrPartition) {
			t.Errorf("%s: err %v, want elsewhere-0 NOT_LEADER_OR_FOLLOWER and nosuch-0 UNKNOWN_TOPIC_OR_PARTITION", name, err)
		}
	}
	qctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	m, err := s.ReplicaLogEndOffsets(qctx, 1, parts)
	cancel()
	check("this node", m, err)
	qctx, cancel = context.WithTimeout(ctx, 100*time.Millisecond)
	m, err = s.replicaOffsetsAt(qctx, 1, s.Addr().String(), replicaOffsetsRequest(parts), parts)
	cancel()
	check("over the network", m, err)
}

// ReplicaLogEndOffsets fails within its context, whether the node is
// unknown, refuses connections, or accepts and never answers.
func TestReplicaLogEndOffsets_boundedByItsContext(t *testing.T) {
	s, _ := startServer(t)
	parts := []TopicPartition{{"t", 0}}
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	for _, tt := range []struct {
		name string
		call func(context.Context) (map[TopicPartition]int64, error)
	}{
		{"unknown node", func(ctx context.Context) (map[TopicPartition]int64, error) {
			return s.ReplicaLogEndOffsets(ctx, 9, parts)
		}},
		{"refused", func(ctx context.Context) (map[TopicPartition]int64, error) {
			return s.ReplicaLogEndOffsets(ctx, 2, parts) // memCluster: 127.0.0.1:1
		}},
		{"silent", func(ctx context.Context) (map[TopicPartition]int64, error) {
			return s.replicaOffsetsAt(ctx, 2, silent.Addr().String(), replicaOffsetsRequest(parts), parts)
		}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		start := time.Now()
		m, err := tt.call(ctx)
		cancel()
		if err == nil || m != nil {
			t.Errorf("%s: %v, %v; want an error", tt.name, m, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s: took %v with a 100 ms context", tt.name, d)
		}
	}
}

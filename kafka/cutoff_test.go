package kafka

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestProduce_cutOffLeaderAnswersWaitingProducesAtOnce: an acks=all
// produce waiting for a follower is answered NOT_LEADER_OR_FOLLOWER as
// soon as the leader loses its Raft quorum (another node may lead now),
// not after the request's timeout, and new produces are refused the same
// way while it stays cut off.
func TestProduce_cutOffLeaderAnswersWaitingProducesAtOnce(t *testing.T) {
	s, mc := startServer(t, func(c *Config) { c.DefaultPartitions = 1; c.ReplicaLagTime = time.Minute })
	ctx := ctxT(t)
	c := newClient(t, s)
	if p := produceRaw(ctx, t, c, "cut", 0, testBatch(t, 1)); p.ErrorCode != 0 {
		t.Fatalf("first produce = %v", kerr.ErrorForCode(p.ErrorCode))
	}
	mc.setReplicas("cut", 0, []int32{1, 2}, []int32{1, 2}) // node 2 never fetches: acks=all waits
	s.parts.refresh()

	answered := make(chan int16, 1)
	start := time.Now()
	go func() { answered <- produceRaw(ctx, t, c, "cut", 0, testBatch(t, 1)).ErrorCode }()
	time.Sleep(500 * time.Millisecond)
	select {
	case code := <-answered:
		t.Fatalf("the produce was answered (%v) while its follower had not copied it", kerr.ErrorForCode(code))
	default:
	}
	mc.quorumLost.Store(true)
	select {
	case code := <-answered:
		if code != kerr.NotLeaderForPartition.Code {
			t.Errorf("waiting produce answered %v, want NOT_LEADER_OR_FOLLOWER", kerr.ErrorForCode(code))
		}
		t.Logf("answered %v after the produce was sent, %v after the quorum was lost",
			time.Since(start).Round(time.Millisecond), time.Since(start.Add(500*time.Millisecond)).Round(time.Millisecond))
	case <-time.After(2 * time.Second): // the request's timeout is 5 s
		t.Fatal("the waiting produce was not answered after the quorum was lost")
	}
	if p := produceRaw(ctx, t, c, "cut", 0, testBatch(t, 1)); p.ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Errorf("produce while cut off = %v, want NOT_LEADER_OR_FOLLOWER", kerr.ErrorForCode(p.ErrorCode))
	}
}

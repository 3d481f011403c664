package appliance

import (
	"context"
	"slices"
	"time"

	"github.com/reeve-edge/reeve/kafka"
	"github.com/reeve-edge/reeve/policy"
	"github.com/reeve-edge/reeve/raft"
)

// storageFailedBudget bounds the tries to move a failed partition's
// leadership away.
const storageFailedBudget = 30 * time.Second

// storageFailed answers a partition log that failed on this node (the
// Kafka server's OnStorageFailed): a storage_failed event, and, if this
// node leads the partition and another replica is in sync, an election
// through the policy with reason storage_failed, which takes this node out
// of the ISR. The failed log takes no writes and serves only what was
// durable before the failure, so clients find the new leader on their
// next metadata refresh. A partition with no other in-sync replica stays
// here, serving those reads, until an operator restarts the node.
//
// It runs on its own goroutine, after start has set the controller and
// recorder (a log fails only on a write, and writes come after Serve).
func (s *Server) storageFailed(ctx context.Context, f kafka.StorageFailure) {
	if s.recorder != nil {
		s.recorder.Record(raft.Event{Type: raft.EventStorageFailed, Topic: f.Topic, TopicID: raft.TopicID(f.TopicID),
			Partition: f.Partition, Detail: f.Err.Error()})
	}
	ctx, cancel := context.WithTimeout(ctx, storageFailedBudget)
	defer cancel()
	self := s.store.NodeID()
	for ctx.Err() == nil {
		t, tok := s.store.Topic(f.Topic)
		p, pok := s.store.Partition(raft.TopicID(f.TopicID), f.Partition)
		if !tok || !pok || t.ID != p.TopicID || p.Leader != self {
			return
		}
		if !slices.ContainsFunc(p.ISR, func(r uint64) bool { return r != self }) {
			s.log.Error("kafka: partition log failed and no other replica is in sync: it stays here, taking no writes, until the node restarts",
				"topic", f.Topic, "partition", f.Partition, "isr", p.ISR)
			return
		}
		for _, rec := range s.controller.Elect(ctx, []policy.PartitionState{partitionState(p, allowsUnclean(t))}, policy.ReasonStorageFailed) {
			if rec.Committed && rec.To != 0 {
				return
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	s.log.Error("kafka: could not move the leadership of a partition whose log failed; its leader timeout will not either while this node lives",
		"topic", f.Topic, "partition", f.Partition, "err", ctx.Err())
}

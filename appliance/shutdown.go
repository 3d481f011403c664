package appliance

import (
	"context"
	"slices"
	"time"

	"github.com/reeve-edge/reeve/policy"
	"github.com/reeve-edge/reeve/raft"
)

// shutdownBudget bounds a controlled shutdown; past it the node exits
// anyway and the others elect new leaders after the leader timeout.
const shutdownBudget = 15 * time.Second

// controlledShutdown moves leadership away before the process exits, so
// clients see a planned move (NOT_LEADER_OR_FOLLOWER and a retry) instead
// of a leader timeout: every partition this node leads goes to the choice
// of the policy (reason controlled_shutdown), this node leaves their ISRs,
// and the Raft groups it leads are handed to other members.
func (s *Server) controlledShutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownBudget)
	defer cancel()
	self := s.store.NodeID()
	start := time.Now()
	moved, stuck := 0, 0
	for attempt := 0; attempt < 3; attempt++ {
		stuck = 0
		for _, t := range s.store.Topics() {
			for _, p := range s.store.Partitions(t) {
				if p.Leader != self || len(p.Replicas) < 2 {
					continue
				}
				if s.moveAway(ctx, t, p) {
					moved++
				} else {
					stuck++
				}
			}
		}
		if stuck == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	live := s.live
	err := s.store.TransferLeadership(ctx, func(cands []uint64) uint64 {
		for _, c := range cands {
			if live.Alive(c, s.cfg.Election.LeaderTimeout.Duration) {
				return c
			}
		}
		return 0
	})
	s.log.Info("controlled shutdown", "partitions_moved", moved, "partitions_kept", stuck,
		"raft_leadership_err", errString(err), "took", time.Since(start).Round(time.Millisecond).String())
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// moveAway hands one partition to the replica the policy picks.
func (s *Server) moveAway(ctx context.Context, t raft.Topic, p raft.Partition) bool {
	self := s.store.NodeID()
	in := policy.Input{Topic: t.Name, Partition: p.Partition, Leader: self, LeaderEpoch: p.LeaderEpoch,
		Reason: policy.ReasonControlledShutdown}
	timeout := s.cfg.Election.LeaderTimeout.Duration
	for _, r := range p.Replicas {
		in.Replicas = append(in.Replicas, policy.Replica{ID: r, Alive: r != self && s.live.Alive(r, timeout),
			InISR: slices.Contains(p.ISR, r)})
	}
	ds, _ := policy.FirstISR{}.Decide(ctx, []policy.Input{in})
	d := ds[0]
	if d.Keep || d.Leader == 0 || policy.Validate(in, d) != nil {
		return false
	}
	leader := d.Leader
	isr := slices.DeleteFunc(slices.Clone(p.ISR), func(r uint64) bool { return r == self })
	_, err := s.store.UpdatePartition(ctx, raft.PartitionUpdate{TopicID: t.ID, Partition: p.Partition,
		ExpectedLeaderEpoch: p.LeaderEpoch, ExpectedPartitionEpoch: p.PartitionEpoch, Leader: &leader, ISR: isr})
	if err != nil {
		s.log.Warn("controlled shutdown: partition not moved", "topic", t.Name, "partition", p.Partition, "err", err)
		return false
	}
	return true
}

package appliance

import (
	"context"
	"time"

	"github.com/reeve-edge/reeve/policy"
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
		var mine []policy.PartitionState
		for _, t := range s.store.Topics() {
			for _, p := range s.store.Partitions(t) {
				if p.Leader == self && len(p.Replicas) > 1 {
					mine = append(mine, partitionState(p, allowsUnclean(t)))
				}
			}
		}
		before := moved
		for _, rec := range s.controller.Elect(ctx, mine, policy.ReasonControlledShutdown) {
			if rec.Committed && rec.To != 0 {
				moved++
			}
		}
		stuck = 0
		for _, t := range s.store.Topics() {
			for _, p := range s.store.Partitions(t) {
				if p.Leader == self && len(p.Replicas) > 1 {
					stuck++
				}
			}
		}
		// Partitions with no other replica to lead stay; another try helps
		// only if this one moved something (a commit may have raced).
		if stuck == 0 || ctx.Err() != nil || (moved == before && attempt > 0) {
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

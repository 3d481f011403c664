package appliance

import (
	"context"
	"time"

	"github.com/reeve-edge/reeve/raft"
)

// watchNodes publishes node_up and node_down events: the cluster group's
// Raft leader compares every active node's liveness (heartbeats within the
// leader timeout) with what it saw last and appends an event to the
// cluster group's outbox for each change. Only the leader reports, so one
// change is one event; a node that became the leader starts from "all up"
// and reports the nodes it finds down.
func (s *Server) watchNodes(ctx context.Context) {
	interval := s.cfg.Election.HeartbeatInterval.Duration
	timeout := s.cfg.Election.LeaderTimeout.Duration
	t := time.NewTicker(interval)
	defer t.Stop()
	var up map[uint64]bool
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if leader, ok := s.store.GroupLeader(raft.ClusterGroup); !ok || leader != s.store.NodeID() {
			up = nil // another node reports; start afresh if this one leads again
			continue
		}
		if up == nil {
			up = map[uint64]bool{}
			for _, n := range s.store.Nodes() {
				up[n.ID] = true
			}
		}
		var evs []raft.Event
		for _, n := range s.store.Nodes() {
			if n.State != raft.NodeActive {
				continue
			}
			alive := s.live.Alive(n.ID, timeout)
			was, known := up[n.ID]
			if !known {
				was = true
			}
			if alive != was {
				typ, level := raft.EventNodeUp, "up"
				if !alive {
					typ, level = raft.EventNodeDown, "down"
				}
				evs = append(evs, raft.Event{Type: typ, Node: n.ID})
				s.log.Info("node "+level, "node", n.ID)
			}
			up[n.ID] = alive
		}
		s.emit(ctx, evs...)
	}
}

// emit appends events to the cluster group's outbox without holding up the
// caller for long; an event that cannot be appended is logged and lost,
// which is all a node or policy event can be when Raft has no quorum.
func (s *Server) emit(ctx context.Context, evs ...raft.Event) {
	if len(evs) == 0 || s.nats == nil {
		return
	}
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.store.AppendEvents(actx, raft.ClusterGroup, evs); err != nil {
		s.log.Warn("events: not recorded", "events", len(evs), "type", string(evs[0].Type), "err", err)
	}
}

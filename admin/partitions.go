package admin

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/reeve-edge/reeve/api"
	"github.com/reeve-edge/reeve/policy"
	"github.com/reeve-edge/reeve/raft"
)

// GET /v1/partitions: every partition of every topic in one answer, with
// each replica's liveness, ISR membership, log end offset and lag behind
// the leader. The status page polls it; docs live in the README's admin API
// table.
//
// Log end offsets are not in Raft: each live replica node is asked with one
// ListOffsets request for all the partitions it holds (the same question the
// election controller asks before a policy that wants offsets runs). Nodes
// the answering node holds dead are not asked, so a dead peer never makes
// the answer wait; a live one that does not answer within
// partitionOffsetsTimeout leaves its offsets unknown.

// partitionOffsetsTimeout bounds the log end offset questions of one
// GET /v1/partitions.
const partitionOffsetsTimeout = time.Second

// listPartitions answers GET /v1/partitions. Query parameters: stale=true
// reads the local view without a Raft barrier (what the status page does,
// so it keeps working on a node cut off from the quorum), topic=NAME keeps
// one topic, offsets=false skips asking replicas for log end offsets.
func (s *Server) listPartitions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	stale := q.Get("stale") == "true"
	if err := s.consistent(r, s.n.Store.Groups()...); err != nil {
		writeError(w, err)
		return
	}
	topics := s.n.Store.Topics()
	if name := q.Get("topic"); name != "" {
		t, ok := s.n.Store.Topic(name)
		if !ok {
			writeError(w, fmt.Errorf("%w: %q", raft.ErrUnknownTopic, name))
			return
		}
		topics = []raft.Topic{t}
	}
	slices.SortFunc(topics, func(a, b raft.Topic) int { return cmp.Compare(a.Name, b.Name) })

	out := api.Partitions{NodeID: s.n.Store.NodeID(), Stale: stale, Offsets: q.Get("offsets") != "false", Partitions: []api.PartitionInfo{}}
	var parts []raft.Partition
	for _, t := range topics {
		ps := s.n.Store.Partitions(t)
		slices.SortFunc(ps, func(a, b raft.Partition) int { return cmp.Compare(a.Partition, b.Partition) })
		parts = append(parts, ps...)
	}
	timeout := s.n.LeaderTimeout
	alive := map[uint64]bool{}
	for _, n := range s.n.Store.Nodes() {
		alive[n.ID] = n.State == raft.NodeActive && s.n.Liveness.Alive(n.ID, timeout)
	}
	var leos []map[uint64]int64
	if out.Offsets {
		ctx, cancel := context.WithTimeout(r.Context(), partitionOffsetsTimeout)
		leos = s.n.Elections.LogEndOffsets(ctx, askable(parts, alive))
		cancel()
	}
	for i, p := range parts {
		pi := api.PartitionInfo{PartitionState: apiPartitionState(p, s.n.Store.GroupOf(p.TopicID, p.Partition)), MaxLag: -1}
		var known map[uint64]int64
		if leos != nil {
			known = leos[i]
		}
		pi.ReplicaStates, pi.MaxLag = replicaStates(p, alive, known)
		out.Partitions = append(out.Partitions, pi)
	}
	writeJSON(w, http.StatusOK, out)
}

// askable lists parts for the offset question with only the live replicas,
// so no request goes to a node the answering node holds dead.
func askable(parts []raft.Partition, alive map[uint64]bool) []policy.PartitionState {
	out := make([]policy.PartitionState, len(parts))
	for i, p := range parts {
		out[i] = policy.PartitionState{Topic: p.Topic, TopicID: p.TopicID, Partition: p.Partition}
		for _, r := range p.Replicas {
			if alive[r] {
				out[i].Replicas = append(out[i].Replicas, r)
			}
		}
	}
	return out
}

// replicaStates describes p's replicas given each node's liveness and the
// log end offsets known (nil when none were asked), and returns the largest
// lag of an in-sync follower (-1 when none is known).
func replicaStates(p raft.Partition, alive map[uint64]bool, leos map[uint64]int64) ([]api.ReplicaInfo, int64) {
	leaderLEO, leaderKnown := leos[p.Leader]
	if p.Leader == raft.NoLeader {
		leaderKnown = false
	}
	maxLag := int64(-1)
	out := make([]api.ReplicaInfo, 0, len(p.Replicas))
	for _, r := range p.Replicas {
		ri := api.ReplicaInfo{Node: r, Leader: r == p.Leader, InISR: slices.Contains(p.ISR, r), Alive: alive[r], LogEndOffset: -1, Lag: -1}
		if leo, ok := leos[r]; ok {
			ri.LogEndOffset = leo
			if leaderKnown {
				// A follower ahead of the leader (a tail it will truncate)
				// is not behind it.
				ri.Lag = max(0, leaderLEO-leo)
			}
		}
		if !ri.Leader && ri.InISR && ri.Lag > maxLag {
			maxLag = ri.Lag
		}
		out = append(out, ri)
	}
	return out, maxLag
}

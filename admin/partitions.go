package admin

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/reeve-edge/reeve/api"
	"github.com/reeve-edge/reeve/policy"
	"github.com/reeve-edge/reeve/raft"
)

// GET /v1/partitions: every partition of every topic in one answer, with
// each replica's liveness, ISR membership, log end offset and lag behind
// the leader. The status page polls it; docs/admin-api.md documents it.
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
	q := parsePartitionsQuery(r.URL.Query())
	if err := s.consistent(r, s.n.Store.Groups()...); err != nil {
		writeError(w, err)
		return
	}
	parts, err := selectPartitions(s.gatherTopics(), q.Topic)
	if err != nil {
		writeError(w, err)
		return
	}
	nodes := s.n.Store.Nodes()
	in := partitionsInput{Self: s.n.Store.NodeID(), Query: q, Partitions: parts, GroupOf: s.n.Store.GroupOf,
		Alive: activeAlive(nodes, s.gatherHeartbeats(nodes))}
	if q.Offsets {
		ctx, cancel := context.WithTimeout(r.Context(), partitionOffsetsTimeout)
		in.LogEndOffsets = s.n.Elections.LogEndOffsets(ctx, askable(parts, in.Alive))
		cancel()
	}
	writeJSON(w, http.StatusOK, partitionsBody(in))
}

// partitionsQuery is what a GET /v1/partitions asks for.
type partitionsQuery struct {
	Topic   string // ?topic=NAME: this topic only; "" for every topic
	Stale   bool   // ?stale=true: the local view, read without a Raft barrier
	Offsets bool   // all but ?offsets=false: ask the replicas for their log end offsets
}

func parsePartitionsQuery(q url.Values) partitionsQuery {
	return partitionsQuery{Topic: q.Get("topic"), Stale: q.Get("stale") == "true", Offsets: q.Get("offsets") != "false"}
}

// topicPartitions is a topic with the partitions of it that this node
// holds.
type topicPartitions struct {
	Topic      raft.Topic
	Partitions []raft.Partition
}

// gatherTopics reads every topic with its partitions from this node's
// applied metadata: topics by name, each one's partitions by index.
func (s *Server) gatherTopics() []topicPartitions {
	topics := s.n.Store.Topics()
	out := make([]topicPartitions, len(topics))
	for i, t := range topics {
		out[i] = topicPartitions{Topic: t, Partitions: s.n.Store.Partitions(t)}
	}
	return out
}

// selectPartitions lists the partitions a GET /v1/partitions answers with:
// those of the topic named topic ("" for every topic), by topic name and
// then partition, whatever the order of topics. An unknown topic is
// raft.ErrUnknownTopic. It does not modify topics.
func selectPartitions(topics []topicPartitions, topic string) ([]raft.Partition, error) {
	if topic != "" {
		i := slices.IndexFunc(topics, func(tp topicPartitions) bool { return tp.Topic.Name == topic })
		if i < 0 {
			return nil, fmt.Errorf("%w: %q", raft.ErrUnknownTopic, topic)
		}
		topics = topics[i : i+1]
	}
	topics = slices.Clone(topics)
	slices.SortFunc(topics, func(a, b topicPartitions) int { return cmp.Compare(a.Topic.Name, b.Topic.Name) })
	var out []raft.Partition
	for _, tp := range topics {
		n := len(out)
		out = append(out, tp.Partitions...)
		slices.SortFunc(out[n:], func(a, b raft.Partition) int { return cmp.Compare(a.Partition, b.Partition) })
	}
	return out, nil
}

// activeAlive tells, by node id, whether a replica on that node counts as
// alive in GET /v1/partitions: the node is active and heard within the
// leader timeout.
func activeAlive(nodes []raft.Node, hb map[uint64]heartbeat) map[uint64]bool {
	out := make(map[uint64]bool, len(nodes))
	for _, n := range nodes {
		out[n.ID] = n.State == raft.NodeActive && hb[n.ID].Alive
	}
	return out
}

// partitionsInput is what a GET /v1/partitions answer is made of.
type partitionsInput struct {
	Self  uint64 // the answering node
	Query partitionsQuery
	// Partitions are selectPartitions' list; the answer keeps its order.
	Partitions []raft.Partition
	// GroupOf gives a partition's Raft group (raft.Store.GroupOf).
	GroupOf func(id raft.TopicID, partition int32) uint64
	// Alive is activeAlive's answer; a node missing from it is dead.
	Alive map[uint64]bool
	// LogEndOffsets are the replicas' log end offsets by node, one map per
	// partition in Partitions' order; nil when none were asked.
	LogEndOffsets []map[uint64]int64
}

// partitionsBody is the body of GET /v1/partitions.
func partitionsBody(in partitionsInput) api.Partitions {
	out := api.Partitions{NodeID: in.Self, Stale: in.Query.Stale, Offsets: in.Query.Offsets,
		Partitions: make([]api.PartitionInfo, 0, len(in.Partitions))}
	for i, p := range in.Partitions {
		var leos map[uint64]int64
		if i < len(in.LogEndOffsets) {
			leos = in.LogEndOffsets[i]
		}
		pi := api.PartitionInfo{PartitionState: apiPartitionState(p, in.GroupOf(p.TopicID, p.Partition))}
		pi.ReplicaStates, pi.MaxLag = replicaStates(p, in.Alive, leos)
		out.Partitions = append(out.Partitions, pi)
	}
	return out
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

package raft

import (
	"slices"
	"sort"
)

// The methods in this file read the local replica's view: cheap, never
// blocking on the network, and possibly behind the leader. Call Barrier first
// where a read must be linearizable.

// NodeID returns this node's id.
func (s *Store) NodeID() uint64 { return s.cfg.NodeID }

// PartitionGroups returns K, or 0 before the node has learnt it.
func (s *Store) PartitionGroups() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.k
}

// Groups returns the ids of every Raft group this node runs, cluster group first.
func (s *Store) Groups() []uint64 {
	k := s.PartitionGroups()
	out := []uint64{ClusterGroup}
	for g := ClusterGroup + 1; g <= ClusterGroup+uint64(k); g++ {
		out = append(out, g)
	}
	return out
}

// GroupOf returns the group of a partition, or 0 before K is known.
func (s *Store) GroupOf(id TopicID, partition int32) uint64 {
	k := s.PartitionGroups()
	if k == 0 {
		return 0
	}
	return GroupFor(id, partition, k)
}

// GroupLeader returns the node that leads a group as this node last heard,
// and whether one is known. The leader of a partition group is the
// controller of that group's partitions.
func (s *Store) GroupLeader(group uint64) (uint64, bool) {
	v, ok := s.leaders.Load(group)
	if !ok || v.(uint64) == 0 {
		return 0, false
	}
	return v.(uint64), true
}

// AppliedIndex returns the last log index the local replica of group applied.
func (s *Store) AppliedIndex(group uint64) uint64 {
	if group == ClusterGroup {
		s.cluster.mu.RLock()
		defer s.cluster.mu.RUnlock()
		return s.cluster.index
	}
	g := s.group(group)
	if g == nil {
		return 0
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.index
}

func (s *Store) group(id uint64) *partitionSM {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.groups[id]
}

// ClusterName returns the name the cluster was bootstrapped with.
func (s *Store) ClusterName() string {
	s.cluster.mu.RLock()
	defer s.cluster.mu.RUnlock()
	if s.cluster.st.Name == "" {
		return s.cfg.ClusterName
	}
	return s.cluster.st.Name
}

// Nodes returns the node registry, removed nodes included, by id.
func (s *Store) Nodes() []Node {
	s.cluster.mu.RLock()
	defer s.cluster.mu.RUnlock()
	out := make([]Node, 0, len(s.cluster.st.Nodes))
	for _, n := range s.cluster.st.Nodes {
		out = append(out, *n.clone())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Node returns one registry entry.
func (s *Store) Node(id uint64) (Node, bool) {
	s.cluster.mu.RLock()
	defer s.cluster.mu.RUnlock()
	n, ok := s.cluster.st.Nodes[id]
	if !ok {
		return Node{}, false
	}
	return *n.clone(), true
}

// Topics returns every topic by name.
func (s *Store) Topics() []Topic {
	s.cluster.mu.RLock()
	defer s.cluster.mu.RUnlock()
	out := make([]Topic, 0, len(s.cluster.st.Topics))
	for _, t := range s.cluster.st.Topics {
		out = append(out, *t.clone())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Topic returns one topic by name.
func (s *Store) Topic(name string) (Topic, bool) {
	s.cluster.mu.RLock()
	defer s.cluster.mu.RUnlock()
	t, ok := s.cluster.st.Topics[name]
	if !ok {
		return Topic{}, false
	}
	return *t.clone(), true
}

// Partition returns the replicated state of one partition.
func (s *Store) Partition(id TopicID, partition int32) (Partition, bool) {
	g := s.group(s.GroupOf(id, partition))
	if g == nil {
		return Partition{}, false
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	p, ok := g.parts[partKey{id, partition}]
	if !ok {
		return Partition{}, false
	}
	return *p.clone(), true
}

// Partitions returns the state of every partition of a topic that its groups
// hold, by partition number. A partition still being created is absent.
func (s *Store) Partitions(t Topic) []Partition {
	out := make([]Partition, 0, t.Partitions)
	for p := int32(0); p < t.Partitions; p++ {
		if st, ok := s.Partition(t.ID, p); ok {
			out = append(out, st)
		}
	}
	return out
}

// GroupPartitions returns every partition a group holds.
func (s *Store) GroupPartitions(group uint64) []Partition {
	g := s.group(group)
	if g == nil {
		return nil
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.listLocked(func(*Partition) bool { return true })
}

// Changes subscribes to committed changes as this replica applies them.
func (s *Store) Changes() *Subscription { return s.feed.subscribe() }

// liveNodes returns the active registered nodes that Live accepts.
func (s *Store) liveNodes() []uint64 {
	var out []uint64
	for _, n := range s.Nodes() {
		if n.State == NodeActive && (s.cfg.Live == nil || s.cfg.Live(n.ID)) {
			out = append(out, n.ID)
		}
	}
	return slices.Clip(out)
}

// GroupLog describes the local replica's Raft log of one group: the range of
// entries on disk and the index of the newest snapshot.
type GroupLog struct {
	FirstIndex    uint64 `json:"first_index"`
	LastIndex     uint64 `json:"last_index"`
	SnapshotIndex uint64 `json:"snapshot_index"`
}

// Log returns the local log state of a group, if this node runs it.
func (s *Store) Log(group uint64) (GroupLog, bool) {
	r, err := s.nh.GetLogReader(group)
	if err != nil {
		return GroupLog{}, false
	}
	first, last := r.GetRange()
	return GroupLog{FirstIndex: first, LastIndex: last, SnapshotIndex: r.Snapshot().Index}, true
}

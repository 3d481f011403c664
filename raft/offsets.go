package raft

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sort"
)

// Consumer groups' committed offsets live in the partition groups, each
// consumer group in the one GroupForConsumer picks. The leader of that Raft
// group coordinates the consumer group, so groups spread over the nodes
// the same way partition controllers do, and a commit is durable on a
// quorum before the client hears it succeeded.

// GroupOffset is one committed offset of a consumer group.
type GroupOffset struct {
	Topic       string `json:"topic"`
	Partition   int32  `json:"partition"`
	Offset      int64  `json:"offset"`
	LeaderEpoch int32  `json:"leader_epoch"`
	Metadata    string `json:"metadata,omitempty"`
}

// GroupForConsumer returns the Raft group holding a consumer group's
// offsets; like GroupFor it never changes for a given K.
func GroupForConsumer(group string, groups int) uint64 {
	h := fnv.New32a()
	h.Write([]byte("consumer-group/"))
	h.Write([]byte(group))
	return ClusterGroup + 1 + uint64(h.Sum32()%uint32(groups))
}

type commitOffsetsCmd struct {
	Group   string        `json:"group"`
	Offsets []GroupOffset `json:"offsets"`
}

type deleteOffsetsCmd struct {
	Group string `json:"group"`
}

type offsetKey struct {
	topic     string
	partition int32
}

// maxOffsetMetadata bounds the metadata string stored with an offset, as
// Kafka's offset.metadata.max.bytes does.
const maxOffsetMetadata = 4096

func (g *partitionSM) commitOffsets(body []byte) (result, []Change) {
	var cmd commitOffsetsCmd
	if err := json.Unmarshal(body, &cmd); err != nil {
		return failed(ErrUnsupportedCommand, "commit offsets: %v", err), nil
	}
	if cmd.Group == "" {
		return failed(ErrInvalidUpdate, "commit offsets: empty group id"), nil
	}
	for _, o := range cmd.Offsets {
		if len(o.Metadata) > maxOffsetMetadata {
			return failed(ErrInvalidUpdate, "group %q: offset metadata of %d bytes; the limit is %d", cmd.Group, len(o.Metadata), maxOffsetMetadata), nil
		}
	}
	m := g.offsets[cmd.Group]
	if m == nil {
		m = make(map[offsetKey]GroupOffset)
		g.offsets[cmd.Group] = m
	}
	for _, o := range cmd.Offsets {
		m[offsetKey{o.Topic, o.Partition}] = o
	}
	return result{}, nil
}

func (g *partitionSM) deleteOffsets(body []byte) (result, []Change) {
	var cmd deleteOffsetsCmd
	if err := json.Unmarshal(body, &cmd); err != nil {
		return failed(ErrUnsupportedCommand, "delete offsets: %v", err), nil
	}
	delete(g.offsets, cmd.Group)
	return result{}, nil
}

// dropTopicOffsets forgets every group's offsets of a deleted topic, so a
// new topic of the same name starts with none.
func (g *partitionSM) dropTopicOffsets(topic string) {
	for group, m := range g.offsets {
		for k := range m {
			if k.topic == topic {
				delete(m, k)
			}
		}
		if len(m) == 0 {
			delete(g.offsets, group)
		}
	}
}

// sortedOffsets lists a group's offsets by topic and partition.
func sortedOffsets(m map[offsetKey]GroupOffset) []GroupOffset {
	out := make([]GroupOffset, 0, len(m))
	for _, o := range m {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out
}

// groupOffsetsSnapshot is the snapshot form of one group's offsets.
type groupOffsetsSnapshot struct {
	Group   string        `json:"group"`
	Offsets []GroupOffset `json:"offsets"`
}

func (g *partitionSM) offsetsSnapshotLocked() []groupOffsetsSnapshot {
	out := make([]groupOffsetsSnapshot, 0, len(g.offsets))
	for group, m := range g.offsets {
		out = append(out, groupOffsetsSnapshot{Group: group, Offsets: sortedOffsets(m)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out
}

// ConsumerGroupLeader returns the node coordinating a consumer group: the
// leader of the Raft group holding its offsets.
func (s *Store) ConsumerGroupLeader(group string) (uint64, bool) {
	k := s.PartitionGroups()
	if k == 0 {
		return 0, false
	}
	return s.GroupLeader(GroupForConsumer(group, k))
}

// CommitOffsets stores a consumer group's committed offsets.
func (s *Store) CommitOffsets(ctx context.Context, group string, offsets []GroupOffset) error {
	k := s.PartitionGroups()
	if k == 0 {
		return fmt.Errorf("commit offsets of group %q: %w", group, ErrNotBootstrapped)
	}
	if _, err := s.propose(ctx, GroupForConsumer(group, k), kindCommitOffsets, commitOffsetsCmd{Group: group, Offsets: offsets}); err != nil {
		return fmt.Errorf("commit offsets of group %q: %w", group, err)
	}
	return nil
}

// GroupOffsets returns a consumer group's committed offsets, read after a
// ReadIndex so a new coordinator sees every commit of the old one.
func (s *Store) GroupOffsets(ctx context.Context, group string) ([]GroupOffset, error) {
	k := s.PartitionGroups()
	if k == 0 {
		return nil, fmt.Errorf("offsets of group %q: %w", group, ErrNotBootstrapped)
	}
	g := GroupForConsumer(group, k)
	if err := s.Barrier(ctx, g); err != nil {
		return nil, fmt.Errorf("offsets of group %q: %w", group, err)
	}
	psm := s.group(g)
	psm.mu.RLock()
	defer psm.mu.RUnlock()
	return sortedOffsets(psm.offsets[group]), nil
}

// DeleteGroupOffsets forgets every committed offset of a consumer group.
func (s *Store) DeleteGroupOffsets(ctx context.Context, group string) error {
	k := s.PartitionGroups()
	if k == 0 {
		return fmt.Errorf("delete offsets of group %q: %w", group, ErrNotBootstrapped)
	}
	if _, err := s.propose(ctx, GroupForConsumer(group, k), kindDeleteOffsets, deleteOffsetsCmd{Group: group}); err != nil {
		return fmt.Errorf("delete offsets of group %q: %w", group, err)
	}
	return nil
}

// OffsetGroups lists, from the local view, every consumer group with
// committed offsets.
func (s *Store) OffsetGroups() []string {
	var out []string
	for _, g := range s.Groups()[1:] {
		psm := s.group(g)
		if psm == nil {
			continue
		}
		psm.mu.RLock()
		for name := range psm.offsets {
			out = append(out, name)
		}
		psm.mu.RUnlock()
	}
	sort.Strings(out)
	return out
}

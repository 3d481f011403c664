package raft

import (
	"bytes"
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
//
// An offset is kept under the id of the topic it was committed for, which
// the proposer (the Kafka coordinator) resolves from the topic's name when
// the commit arrives: a consumer group's state machine cannot read the
// cluster group's topics, and names are reused after a delete while ids
// never are. So the purge of a deleted topic drops only that topic's
// offsets, even when it is applied after a topic of the same name was
// created and committed to, and a recreated topic starts with none.
//
// # Legacy offsets
//
// Entries and snapshots written before offsets carried a topic id hold
// offsets with a zero TopicID. Which topic such an offset was committed
// for cannot be known any more, so it means what it meant to the version
// that wrote it: it belongs to whichever topic has its name when it is
// read, and
//
//   - a commit with an id for the same name and partition replaces it, so
//     a live topic's consumers move their offsets onto its id as they
//     commit, and no later purge can take them;
//   - the purge of any topic of that name drops it, because an offset
//     written before the upgrade for a topic that is now being deleted must
//     not pass to the next topic of that name;
//   - a commit without an id (from a node not yet upgraded, in a rolling
//     upgrade) replaces every offset of that name and partition, whatever
//     its id, as that node itself does.
//
// What cannot be avoided, for legacy offsets only: if a topic was deleted
// and recreated before the upgrade and the old one's purge is applied
// after it, the purge drops the new topic's legacy offsets of partitions
// its consumers have not committed since the upgrade; and between a
// topic's delete and its purge (normally one Raft commit; at most the
// reconcile interval if the deleting node failed) a topic recreated under
// its name reads the legacy offsets its predecessor still had, as every
// offset did before ids.

// GroupOffset is one committed offset of a consumer group.
type GroupOffset struct {
	Topic string `json:"topic"`
	// TopicID is the id of the topic the offset was committed for, zero
	// for a legacy offset (see above).
	TopicID     TopicID `json:"topic_id,omitzero"`
	Partition   int32   `json:"partition"`
	Offset      int64   `json:"offset"`
	LeaderEpoch int32   `json:"leader_epoch"`
	Metadata    string  `json:"metadata,omitempty"`
}

// Legacy reports whether the offset was committed without a topic id, by
// a version of reeve that keyed offsets by topic name only.
func (o GroupOffset) Legacy() bool { return o.TopicID.IsZero() }

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

// offsetKey identifies one stored offset of a group. The name is part of
// the key for legacy offsets, which have no id; for the others it adds
// nothing, as an id has one name for ever.
type offsetKey struct {
	id        TopicID
	topic     string
	partition int32
}

func keyOf(o GroupOffset) offsetKey { return offsetKey{o.TopicID, o.Topic, o.Partition} }

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
		if o.Legacy() {
			// As the version that wrote it: the name's offset, whatever
			// topic held it before.
			for k := range m {
				if k.topic == o.Topic && k.partition == o.Partition {
					delete(m, k)
				}
			}
		} else {
			delete(m, offsetKey{TopicID{}, o.Topic, o.Partition})
		}
		m[keyOf(o)] = o
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

// dropTopicOffsets forgets every group's offsets of a deleted topic: those
// committed for its id, and the legacy ones under its name (see above). An
// empty name drops by id only.
func (g *partitionSM) dropTopicOffsets(id TopicID, name string) {
	for group, m := range g.offsets {
		for k := range m {
			ofID := !id.IsZero() && k.id == id
			legacyOfName := k.id.IsZero() && name != "" && k.topic == name
			if ofID || legacyOfName {
				delete(m, k)
			}
		}
		if len(m) == 0 {
			delete(g.offsets, group)
		}
	}
}

// sortedOffsets lists a group's offsets by topic and partition, a legacy
// offset before those with ids, and ids in byte order, so that every
// replica lists and snapshots them alike.
func sortedOffsets(m map[offsetKey]GroupOffset) []GroupOffset {
	out := make([]GroupOffset, 0, len(m))
	for _, o := range m {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		if out[i].Partition != out[j].Partition {
			return out[i].Partition < out[j].Partition
		}
		return bytes.Compare(out[i].TopicID[:], out[j].TopicID[:]) < 0
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
// ReadIndex so a new coordinator sees every commit of the old one. They
// include offsets of deleted topics whose purge has not reached the group
// yet, and legacy offsets without a topic id; a caller answering for a
// topic keeps those whose TopicID is that topic's id, and the legacy ones
// of its name.
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

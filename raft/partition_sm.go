package raft

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"

	sm "github.com/lni/dragonboat/v4/statemachine"
)

// partitionSM is the state machine of one partition group: the replicated
// state of every partition that GroupFor maps to it.
type partitionSM struct {
	group uint64
	feed  *feed

	mu      sync.RWMutex // guards parts, offsets, out and index for the local view
	parts   map[partKey]*Partition
	offsets map[string]map[offsetKey]GroupOffset // consumer group -> committed offsets
	out     outbox
	index   uint64
}

var _ sm.IStateMachine = (*partitionSM)(nil)

func newPartitionSM(group uint64, f *feed) *partitionSM {
	return &partitionSM{group: group, feed: f, parts: make(map[partKey]*Partition),
		offsets: make(map[string]map[offsetKey]GroupOffset)}
}

// Update applies one committed entry.
func (g *partitionSM) Update(e sm.Entry) (sm.Result, error) {
	g.mu.Lock()
	last := g.out.LastSeq
	res, changes := g.apply(e.Cmd)
	g.index = e.Index
	appended := g.out.LastSeq != last
	g.mu.Unlock()
	for i := range changes {
		changes[i].Group, changes[i].Index = g.group, e.Index
	}
	g.feed.publish(changes...)
	if appended {
		g.feed.outbox.fire()
	}
	data, err := json.Marshal(res)
	if err != nil {
		return sm.Result{}, fmt.Errorf("encode result: %w", err)
	}
	return sm.Result{Value: e.Index, Data: data}, nil
}

func (g *partitionSM) apply(cmd []byte) (result, []Change) {
	k, body, err := decode(cmd)
	if err != nil {
		return failed(err, "%v", err), nil
	}
	switch k {
	case kindInitPartitions:
		var c initPartitionsCmd
		if err := json.Unmarshal(body, &c); err != nil {
			return failed(ErrUnsupportedCommand, "init partitions: %v", err), nil
		}
		var changes []Change
		for i := range c.Partitions {
			p := c.Partitions[i]
			key := partKey{p.TopicID, p.Partition}
			if _, ok := g.parts[key]; ok {
				continue
			}
			g.parts[key] = p.clone()
			changes = append(changes, Change{Kind: ChangePartition, Topic: p.Topic, TopicID: p.TopicID, Partition: p.Partition})
		}
		return result{}, changes
	case kindRemovePartitions:
		var c removePartitionsCmd
		if err := json.Unmarshal(body, &c); err != nil {
			return failed(ErrUnsupportedCommand, "remove partitions: %v", err), nil
		}
		var changes []Change
		for key, p := range g.parts {
			if key.id == c.TopicID {
				delete(g.parts, key)
				changes = append(changes, Change{Kind: ChangePartitionRemoved, Topic: p.Topic, TopicID: p.TopicID, Partition: p.Partition})
			}
		}
		sort.Slice(changes, func(i, j int) bool { return changes[i].Partition < changes[j].Partition })
		g.dropTopicOffsets(c.TopicID, c.Topic)
		return result{}, changes
	case kindCommitOffsets:
		return g.commitOffsets(body)
	case kindDeleteOffsets:
		return g.deleteOffsets(body)
	case kindAppendEvents, kindAckEvents:
		return applyOutbox(&g.out, k, body, false), nil
	case kindUpdatePartitions:
		var c updatePartitionsCmd
		if err := json.Unmarshal(body, &c); err != nil {
			return failed(ErrUnsupportedCommand, "update partitions: %v", err), nil
		}
		res := result{Items: make([]result, len(c.Updates))}
		var (
			changes []Change
			events  []Event
		)
		for i, u := range c.Updates {
			r, prev, changed := g.update(u)
			res.Items[i] = r
			if changed {
				changes = append(changes, Change{Kind: ChangePartition, Topic: r.Partition.Topic, TopicID: u.TopicID, Partition: u.Partition})
				if c.Outbox {
					events = append(events, partitionEvents(&prev, r.Partition, u)...)
				}
			}
		}
		if len(events) > 0 {
			res.EventsDropped = g.out.add(events)
		}
		return res, changes
	}
	return failed(ErrUnsupportedCommand, "command kind %d is not a partition-group command; upgrade reeve on this node", k), nil
}

// update applies one compare-and-set and returns its result, the partition
// as it was before, and whether anything changed. The checks here are the
// structural invariants every replica enforces whoever proposed the change;
// policy checks (is the new leader alive?) belong to the proposer.
func (g *partitionSM) update(u PartitionUpdate) (result, Partition, bool) {
	p, ok := g.parts[partKey{u.TopicID, u.Partition}]
	if !ok {
		return failed(ErrUnknownPartition, "partition %s/%d is not in group %d", u.TopicID, u.Partition, g.group), Partition{}, false
	}
	where := fmt.Sprintf("%s-%d", p.Topic, p.Partition)
	if u.ExpectedLeaderEpoch != p.LeaderEpoch || u.ExpectedPartitionEpoch != p.PartitionEpoch {
		r := failed(ErrStale, "%s: expected leader epoch %d and partition epoch %d, have %d and %d",
			where, u.ExpectedLeaderEpoch, u.ExpectedPartitionEpoch, p.LeaderEpoch, p.PartitionEpoch)
		r.Partition = p.clone()
		return r, Partition{}, false
	}
	leader, isr := p.Leader, p.ISR
	if u.ISR != nil {
		isr = slices.Clone(u.ISR)
		for i, id := range isr {
			if !slices.Contains(p.Replicas, id) || slices.Contains(isr[:i], id) {
				return failed(ErrInvalidUpdate, "%s: ISR %v must be distinct replicas of %v", where, u.ISR, p.Replicas), Partition{}, false
			}
		}
	}
	if u.Leader != nil {
		leader = *u.Leader
		switch {
		case leader == NoLeader:
		case !slices.Contains(p.Replicas, leader):
			return failed(ErrInvalidUpdate, "%s: leader %d is not a replica of %v", where, leader, p.Replicas), Partition{}, false
		case !slices.Contains(isr, leader) && !u.Unclean:
			return failed(ErrInvalidUpdate, "%s: leader %d is not in the ISR %v and the update is not unclean", where, leader, isr), Partition{}, false
		case !slices.Contains(isr, leader):
			isr = []uint64{leader}
		}
	}
	if leader != NoLeader && !slices.Contains(isr, leader) {
		return failed(ErrInvalidUpdate, "%s: ISR %v leaves out leader %d", where, isr, leader), Partition{}, false
	}
	if len(isr) == 0 && leader != NoLeader {
		return failed(ErrInvalidUpdate, "%s: empty ISR with leader %d", where, leader), Partition{}, false
	}
	prev := *p // the slices are replaced below, never written to
	changed := false
	if leader != p.Leader {
		p.Leader = leader
		p.LeaderEpoch++
		changed = true
	}
	if !slices.Equal(isr, p.ISR) {
		p.ISR = isr
		changed = true
	}
	if changed {
		p.PartitionEpoch++
	}
	return result{Partition: p.clone()}, prev, changed
}

// Lookup serves linearizable reads (through SyncRead): a partitionQuery
// returns that partition, anything else every partition of the group.
func (g *partitionSM) Lookup(q any) (any, error) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if key, ok := q.(partKey); ok {
		p, ok := g.parts[key]
		if !ok {
			return nil, fmt.Errorf("%w: %s/%d", ErrUnknownPartition, key.id, key.p)
		}
		return *p.clone(), nil
	}
	return g.listLocked(func(*Partition) bool { return true }), nil
}

func (g *partitionSM) listLocked(keep func(*Partition) bool) []Partition {
	var out []Partition
	for _, p := range g.parts {
		if keep(p) {
			out = append(out, *p.clone())
		}
	}
	// A deleted topic's partitions may linger beside a new topic of the
	// same name until they are purged, so the id breaks ties: every replica
	// must list (and snapshot) them in the same order.
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

// groupSnapshot is the snapshot form: a sorted list, so the bytes are the
// same on every replica, and the index it was taken at. Snapshots written
// before the outbox existed have none, and load as an empty outbox.
type groupSnapshot struct {
	Index      uint64                 `json:"index"`
	Partitions []Partition            `json:"partitions"`
	Offsets    []groupOffsetsSnapshot `json:"offsets,omitempty"`
	Outbox     outbox                 `json:"outbox,omitzero"`
}

// SaveSnapshot implements sm.IStateMachine.
func (g *partitionSM) SaveSnapshot(w io.Writer, _ sm.ISnapshotFileCollection, _ <-chan struct{}) error {
	g.mu.RLock()
	snap := groupSnapshot{Index: g.index, Partitions: g.listLocked(func(*Partition) bool { return true }),
		Offsets: g.offsetsSnapshotLocked(), Outbox: g.out}
	snap.Outbox.Events = slices.Clone(g.out.Events) // trim clears the array it shares
	g.mu.RUnlock()
	return writeSnapshot(w, &snap)
}

// RecoverFromSnapshot implements sm.IStateMachine.
func (g *partitionSM) RecoverFromSnapshot(r io.Reader, _ []sm.SnapshotFile, _ <-chan struct{}) error {
	var snap groupSnapshot
	if err := readSnapshot(r, &snap); err != nil {
		return fmt.Errorf("partition group %d: %w", g.group, err)
	}
	parts := make(map[partKey]*Partition, len(snap.Partitions))
	for i := range snap.Partitions {
		p := &snap.Partitions[i]
		parts[partKey{p.TopicID, p.Partition}] = p
	}
	offsets := make(map[string]map[offsetKey]GroupOffset, len(snap.Offsets))
	for _, grp := range snap.Offsets {
		m := make(map[offsetKey]GroupOffset, len(grp.Offsets))
		for _, o := range grp.Offsets {
			m[keyOf(o)] = o
		}
		offsets[grp.Group] = m
	}
	g.mu.Lock()
	g.parts, g.offsets, g.out, g.index = parts, offsets, snap.Outbox, snap.Index
	g.mu.Unlock()
	g.feed.publish(Change{Group: g.group, Kind: ChangeReset})
	g.feed.outbox.fire()
	return nil
}

// Close implements sm.IStateMachine.
func (g *partitionSM) Close() error { return nil }

package raft

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"
)

// TopicSpec is what an operator or a client asks for when creating a topic.
type TopicSpec struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16
	Config            map[string]string
}

// CreateTopic records a topic in the cluster group, with replicas placed
// round-robin over the live registered nodes, then creates its partitions in
// their groups with the first replica leading and every replica in the ISR.
// If the second step fails the topic exists and the cluster group's leader
// finishes the partitions; the error says so.
func (s *Store) CreateTopic(ctx context.Context, spec TopicSpec) (Topic, error) {
	if s.PartitionGroups() == 0 {
		return Topic{}, fmt.Errorf("create topic %q: %w: node %d has not joined yet", spec.Name, ErrNotBootstrapped, s.cfg.NodeID)
	}
	// Read the registry at the leader's commit point: a node that just
	// registered elsewhere must count as a candidate here.
	if err := s.Barrier(ctx, ClusterGroup); err != nil {
		return Topic{}, fmt.Errorf("create topic %q: %w", spec.Name, err)
	}
	var id TopicID
	if _, err := rand.Read(id[:]); err != nil {
		return Topic{}, fmt.Errorf("create topic %q: topic id: %w", spec.Name, err)
	}
	res, err := s.propose(ctx, ClusterGroup, kindCreateTopic, createTopicCmd{
		Name:              spec.Name,
		ID:                id,
		Partitions:        spec.Partitions,
		ReplicationFactor: spec.ReplicationFactor,
		Config:            spec.Config,
		Candidates:        s.liveNodes(),
	})
	if err != nil {
		return Topic{}, fmt.Errorf("create topic %q: %w", spec.Name, err)
	}
	t := *res.Topic
	if err := s.initPartitions(ctx, t); err != nil {
		return t, fmt.Errorf("create topic %q: recorded, but its partitions are not all created yet (the cluster leader will finish them): %w", t.Name, err)
	}
	return t, nil
}

// CreatePartitions raises a topic's partition count to count, placing the
// new partitions' replicas over the live registered nodes, and creates them
// in their groups.
func (s *Store) CreatePartitions(ctx context.Context, name string, count int32) (Topic, error) {
	if err := s.Barrier(ctx, ClusterGroup); err != nil {
		return Topic{}, fmt.Errorf("add partitions to %q: %w", name, err)
	}
	t, ok := s.Topic(name)
	if !ok {
		return Topic{}, fmt.Errorf("add partitions to %q: %w", name, ErrUnknownTopic)
	}
	res, err := s.propose(ctx, ClusterGroup, kindAddPartitions, addPartitionsCmd{
		Name: name, ID: t.ID, Count: count, Candidates: s.liveNodes(),
	})
	if err != nil {
		return Topic{}, fmt.Errorf("add partitions to %q: %w", name, err)
	}
	t = *res.Topic
	if err := s.initPartitions(ctx, t); err != nil {
		return t, fmt.Errorf("add partitions to %q: recorded, but not all created yet (the cluster leader will finish them): %w", name, err)
	}
	return t, nil
}

// initPartitions proposes the initial state of a topic's partitions, one
// command per group, the groups in parallel. Partitions that exist are kept.
func (s *Store) initPartitions(ctx context.Context, t Topic) error {
	byGroup := make(map[uint64][]Partition)
	for p := int32(0); p < t.Partitions; p++ {
		replicas := t.Assignment[p]
		g := s.GroupOf(t.ID, p)
		byGroup[g] = append(byGroup[g], Partition{
			Topic: t.Name, TopicID: t.ID, Partition: p,
			Replicas: replicas, Leader: replicas[0], ISR: replicas,
		})
	}
	return s.eachGroup(byGroup, func(g uint64, parts []Partition) error {
		_, err := s.propose(ctx, g, kindInitPartitions, initPartitionsCmd{Partitions: parts})
		return err
	})
}

// eachGroup runs f for every group of m in parallel and joins the errors.
func (s *Store) eachGroup(m map[uint64][]Partition, f func(uint64, []Partition) error) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for g, parts := range m {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(g, parts); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// DeleteTopic removes a topic from the cluster group at once (clients stop
// seeing it) and then drops its partitions from their groups.
func (s *Store) DeleteTopic(ctx context.Context, name string) (Topic, error) {
	res, err := s.propose(ctx, ClusterGroup, kindDeleteTopic, deleteTopicCmd{Name: name})
	if err != nil {
		return Topic{}, fmt.Errorf("delete topic %q: %w", name, err)
	}
	t := *res.Topic
	if err := s.purge(ctx, t); err != nil {
		return t, fmt.Errorf("delete topic %q: deleted, but its partitions are not all dropped yet (the cluster leader will finish): %w", name, err)
	}
	return t, nil
}

// purge drops a deleted topic's partitions from every group and then clears
// its tombstone.
func (s *Store) purge(ctx context.Context, t Topic) error {
	m := make(map[uint64][]Partition)
	for _, g := range s.Groups()[1:] {
		m[g] = nil
	}
	err := s.eachGroup(m, func(g uint64, _ []Partition) error {
		_, err := s.propose(ctx, g, kindRemovePartitions, removePartitionsCmd{TopicID: t.ID, Topic: t.Name})
		return err
	})
	if err != nil {
		return err
	}
	_, err = s.propose(ctx, ClusterGroup, kindForgetTopic, forgetTopicCmd{ID: t.ID})
	return err
}

// PartitionResult is the outcome of one update of a batch.
type PartitionResult struct {
	Partition Partition // the state after the update, or the current state when stale
	Err       error     // nil, or wraps ErrStale, ErrUnknownPartition or ErrInvalidUpdate
}

// UpdatePartitions applies compare-and-set updates, as one Raft entry per
// group, and returns a result per update in input order. The error is for
// failures of the whole call (no quorum, closed); per-update rejections are
// in the results. Each applied change appends its events to its group's
// outbox; an update's Time, when zero, is set to now.
func (s *Store) UpdatePartitions(ctx context.Context, updates []PartitionUpdate) ([]PartitionResult, error) {
	out := make([]PartitionResult, len(updates))
	if s.PartitionGroups() == 0 {
		return nil, fmt.Errorf("update partitions: %w", ErrNotBootstrapped)
	}
	type batch struct {
		idx     []int
		updates []PartitionUpdate
	}
	batches := make(map[uint64]*batch)
	now := time.Now().UnixMilli()
	for i, u := range updates {
		if u.Time == 0 {
			u.Time = now
		}
		g := s.GroupOf(u.TopicID, u.Partition)
		b := batches[g]
		if b == nil {
			b = &batch{}
			batches[g] = b
		}
		b.idx = append(b.idx, i)
		b.updates = append(b.updates, u)
	}
	groups := make(map[uint64][]Partition, len(batches))
	for g := range batches {
		groups[g] = nil
	}
	err := s.eachGroup(groups, func(g uint64, _ []Partition) error {
		b := batches[g]
		res, err := s.propose(ctx, g, kindUpdatePartitions, updatePartitionsCmd{Updates: b.updates, Outbox: true})
		if err != nil {
			return err
		}
		s.noteDropped(g, res.EventsDropped)
		if len(res.Items) != len(b.updates) {
			return fmt.Errorf("raft group %d: %d results for %d updates", g, len(res.Items), len(b.updates))
		}
		for j, item := range res.Items {
			r := PartitionResult{Err: item.err()}
			if item.Partition != nil {
				r.Partition = *item.Partition
			}
			out[b.idx[j]] = r
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("update partitions: %w", err)
	}
	return out, nil
}

// UpdatePartition applies one compare-and-set update.
func (s *Store) UpdatePartition(ctx context.Context, u PartitionUpdate) (Partition, error) {
	res, err := s.UpdatePartitions(ctx, []PartitionUpdate{u})
	if err != nil {
		return Partition{}, err
	}
	return res[0].Partition, res[0].Err
}

// reconcileInterval is how often the cluster group's leader checks that
// every topic's partitions exist and every deleted topic's are gone.
const reconcileInterval = 2 * time.Second

// reconcileLoop finishes topic creations and deletions that a proposer did
// not (it crashed, or lost its quorum half way). Only the cluster group's
// leader runs it; the commands it sends are idempotent, so a stale leader
// doing the same work at the same time does no harm.
func (s *Store) reconcileLoop() {
	defer s.done.Done()
	ctx, cancel := s.stopContext()
	defer cancel()
	t := time.NewTicker(reconcileInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if leader, ok := s.GroupLeader(ClusterGroup); !ok || leader != s.cfg.NodeID || s.PartitionGroups() == 0 {
			continue
		}
		if err := s.reconcile(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("raft: reconcile topics", "err", err)
		}
	}
}

func (s *Store) reconcile(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, g := range s.Groups() {
		if err := s.Barrier(ctx, g); err != nil {
			return err
		}
	}
	var errs []error
	for _, t := range s.Topics() {
		if len(s.Partitions(t)) == int(t.Partitions) {
			continue
		}
		s.log.Info("raft: creating missing partitions", "topic", t.Name)
		errs = append(errs, s.initPartitions(ctx, t))
	}
	s.cluster.mu.RLock()
	var dead []Topic
	for _, t := range s.cluster.st.Tombstones {
		dead = append(dead, *t.clone())
	}
	s.cluster.mu.RUnlock()
	for _, t := range dead {
		s.log.Info("raft: dropping partitions of deleted topic", "topic", t.Name, "topic_id", t.ID.String())
		errs = append(errs, s.purge(ctx, t))
	}
	return errors.Join(errs...)
}

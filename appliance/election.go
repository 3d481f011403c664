package appliance

import (
	"context"
	"time"

	"github.com/reeve-edge/reeve/policy"
	"github.com/reeve-edge/reeve/raft"
)

// policyMetadata adapts the Raft store to the election controller.
type policyMetadata struct {
	store   *raft.Store
	changed chan struct{}
}

var _ policy.Metadata = (*policyMetadata)(nil)

func newPolicyMetadata(store *raft.Store) *policyMetadata {
	return &policyMetadata{store: store, changed: make(chan struct{}, 1)}
}

// notify wakes the controller; it never blocks.
func (m *policyMetadata) notify() {
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

func (m *policyMetadata) Changed() <-chan struct{} { return m.changed }

// Controlled lists the partitions of the Raft groups this node leads.
func (m *policyMetadata) Controlled() []policy.PartitionState {
	self := m.store.NodeID()
	var out []policy.PartitionState
	unclean := map[string]bool{}
	for _, t := range m.store.Topics() {
		unclean[t.Name] = allowsUnclean(t)
	}
	for _, g := range m.store.Groups()[1:] {
		if leader, ok := m.store.GroupLeader(g); !ok || leader != self {
			continue
		}
		for _, p := range m.store.GroupPartitions(g) {
			if t, ok := m.store.Topic(p.Topic); !ok || t.ID != p.TopicID {
				continue // a deleted topic's partition, not yet purged
			}
			out = append(out, partitionState(p, unclean[p.Topic]))
		}
	}
	return out
}

// Elect commits leader changes, each if its partition's epochs are
// unchanged, as one Raft entry per partition group.
func (m *policyMetadata) Elect(ctx context.Context, changes []policy.Change) ([]error, error) {
	updates := make([]raft.PartitionUpdate, len(changes))
	for i, c := range changes {
		leader := c.Leader
		updates[i] = raft.PartitionUpdate{
			TopicID: c.Partition.TopicID, Partition: c.Partition.Partition,
			ExpectedLeaderEpoch: c.Partition.LeaderEpoch, ExpectedPartitionEpoch: c.Partition.PartitionEpoch,
			Leader: &leader, ISR: c.ISR, Unclean: c.Partition.Unclean,
		}
	}
	res, err := m.store.UpdatePartitions(ctx, updates)
	if err != nil {
		return nil, err
	}
	errs := make([]error, len(res))
	for i, r := range res {
		errs[i] = r.Err
	}
	return errs, nil
}

func (m *policyMetadata) Labels(node uint64) map[string]string {
	n, _ := m.store.Node(node)
	return n.Labels
}

// controllerWakeup bounds how long the controller sleeps without a
// metadata change or a Raft leader change: a safety net, since both are
// signalled as they happen.
const controllerWakeup = 2 * time.Second

// wake wakes the controller when a Raft group's leader changes (this node
// may have become its partitions' controller), and periodically.
func (m *policyMetadata) wake(ctx context.Context) {
	t := time.NewTicker(controllerWakeup)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.store.LeaderChanged():
		case <-t.C:
		}
		m.notify()
	}
}

// partitionState is a partition as the election controller sees it.
func partitionState(p raft.Partition, unclean bool) policy.PartitionState {
	return policy.PartitionState{
		Topic: p.Topic, TopicID: p.TopicID, Partition: p.Partition,
		Replicas: p.Replicas, ISR: p.ISR, Leader: p.Leader,
		LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch,
		Unclean: unclean,
	}
}

// allowsUnclean reports whether a topic lets a live out-of-sync replica
// lead when no in-sync one is alive.
func allowsUnclean(t raft.Topic) bool { return t.Config["unclean.leader.election.enable"] == "true" }

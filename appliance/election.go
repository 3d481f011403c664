package appliance

import (
	"context"
	"time"

	"github.com/reeve-edge/reeve/kafka"
	"github.com/reeve-edge/reeve/policy"
	"github.com/reeve-edge/reeve/raft"
)

// policyMetadata adapts the Raft store (and, for log-end offsets, the
// Kafka server) to the election controller.
type policyMetadata struct {
	store   *raft.Store
	kafka   *kafka.Server
	changed chan struct{}
}

var _ policy.Metadata = (*policyMetadata)(nil)

func newPolicyMetadata(store *raft.Store, ks *kafka.Server) *policyMetadata {
	return &policyMetadata{store: store, kafka: ks, changed: make(chan struct{}, 1)}
}

var _ policy.OffsetSource = (*policyMetadata)(nil)

// LogEndOffsets asks every replica node, in parallel, where its copies of
// parts end; nodes that do not answer within ctx stay unknown.
func (m *policyMetadata) LogEndOffsets(ctx context.Context, parts []policy.PartitionState) []map[uint64]int64 {
	byNode := map[uint64][]kafka.TopicPartition{}
	for _, p := range parts {
		for _, r := range p.Replicas {
			byNode[r] = append(byNode[r], kafka.TopicPartition{Topic: p.Topic, Partition: p.Partition})
		}
	}
	type answer struct {
		node uint64
		offs map[kafka.TopicPartition]int64
	}
	answers := make(chan answer, len(byNode))
	for node, tps := range byNode {
		go func() {
			offs, _ := m.kafka.ReplicaLogEndOffsets(ctx, int32(node), tps) // partial answers are still used
			answers <- answer{node, offs}
		}()
	}
	out := make([]map[uint64]int64, len(parts))
	for i := range out {
		out[i] = map[uint64]int64{}
	}
	index := map[kafka.TopicPartition]int{}
	for i, p := range parts {
		index[kafka.TopicPartition{Topic: p.Topic, Partition: p.Partition}] = i
	}
	for range byNode {
		a := <-answers
		for tp, off := range a.offs {
			if i, ok := index[tp]; ok {
				out[i][a.node] = off
			}
		}
	}
	return out
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
			Election: &raft.ElectionInfo{Reason: string(c.Reason), Policy: c.Policy, PolicyDigest: c.PolicyDigest,
				Detail: c.Detail, Controller: c.Controller, LatencyMs: c.LatencyMs},
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

// electionsAPI is the election machinery as the admin API uses it:
// manual elections through the controller, log end offsets from the
// replicas.
type electionsAPI struct {
	*policyMetadata
	ctl *policy.Controller
}

func (e electionsAPI) ElectTo(ctx context.Context, t raft.Topic, p raft.Partition, to uint64) (policy.DecisionRecord, error) {
	return e.ctl.ElectTo(ctx, partitionState(p, allowsUnclean(t)), to)
}

package appliance

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/reeve-edge/reeve/config"
	"github.com/reeve-edge/reeve/kafka"
	"github.com/reeve-edge/reeve/raft"
)

// kafkaCluster adapts the Raft store to the metadata view the Kafka layer
// declares, and turns store errors into the Kafka codes clients act on.
type kafkaCluster struct {
	store  *raft.Store
	quorum *quorumWatch
}

var _ kafka.Cluster = kafkaCluster{}

func (k kafkaCluster) LocalNode() int32  { return int32(k.store.NodeID()) }
func (k kafkaCluster) ClusterID() string { return k.store.ClusterName() }

// ControllerID names the cluster group's leader: any node accepts admin
// requests, but that one commits them without a forwarding hop.
func (k kafkaCluster) ControllerID() int32 {
	if id, ok := k.store.GroupLeader(raft.ClusterGroup); ok {
		return int32(id)
	}
	return k.LocalNode()
}

func (k kafkaCluster) Brokers() []kafka.Broker {
	var out []kafka.Broker
	for _, n := range k.store.Nodes() {
		if n.State != raft.NodeActive {
			continue
		}
		host, port, ok := kafka.SplitHostPort(n.KafkaAddress)
		if !ok {
			continue
		}
		b := kafka.Broker{ID: int32(n.ID), Host: host, Port: port}
		if rack, ok := n.Labels["rack"]; ok {
			b.Rack = &rack
		}
		out = append(out, b)
	}
	return out
}

// Current is true once the node has rejoined: its registration was applied
// after everything logged before it, so the view holds every topic.
func (k kafkaCluster) Current() bool { return k.store.Ready() }

// SyncTopics waits for the local view of the cluster group to apply every
// topic change committed before the call.
func (k kafkaCluster) SyncTopics(ctx context.Context) error {
	if err := k.store.Barrier(ctx, raft.ClusterGroup); err != nil {
		return fmt.Errorf("sync topics: %w", err)
	}
	return nil
}

func (k kafkaCluster) LiveNodes() int {
	n := 0
	for _, node := range k.store.Nodes() {
		if node.State == raft.NodeActive {
			n++
		}
	}
	return n
}

func (k kafkaCluster) Topics() []kafka.Topic {
	active := k.activeSet()
	topics := k.store.Topics()
	out := make([]kafka.Topic, 0, len(topics))
	for _, t := range topics {
		out = append(out, k.convert(t, active))
	}
	return out
}

func (k kafkaCluster) Topic(name string) (kafka.Topic, bool) {
	t, ok := k.store.Topic(name)
	if !ok {
		return kafka.Topic{}, false
	}
	return k.convert(t, k.activeSet()), true
}

func (k kafkaCluster) activeSet() map[uint64]bool {
	m := make(map[uint64]bool)
	for _, n := range k.store.Nodes() {
		m[n.ID] = n.State == raft.NodeActive
	}
	return m
}

// convert builds the client's view of a topic. A partition whose state is
// not applied here yet shows its assigned replicas and no leader.
func (k kafkaCluster) convert(t raft.Topic, active map[uint64]bool) kafka.Topic {
	kt := kafka.Topic{Name: t.Name, ID: t.ID, ReplicationFactor: t.ReplicationFactor, Config: t.Config,
		Partitions: make([]kafka.Partition, t.Partitions)}
	for i := range kt.Partitions {
		kp := kafka.Partition{Index: int32(i), Leader: -1, Replicas: ids32(t.Assignment[i])}
		if p, ok := k.store.Partition(t.ID, int32(i)); ok {
			kp.Replicas, kp.ISR, kp.LeaderEpoch, kp.PartitionEpoch = ids32(p.Replicas), ids32(p.ISR), p.LeaderEpoch, p.PartitionEpoch
			if p.Leader != raft.NoLeader {
				kp.Leader = int32(p.Leader)
			}
		}
		for _, r := range kp.Replicas {
			if !active[uint64(r)] {
				kp.Offline = append(kp.Offline, r)
			}
		}
		kt.Partitions[i] = kp
	}
	return kt
}

func ids32(ids []uint64) []int32 {
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}

func (k kafkaCluster) CreateTopic(ctx context.Context, spec kafka.TopicSpec) (kafka.Topic, error) {
	t, err := k.store.CreateTopic(ctx, raft.TopicSpec{Name: spec.Name, Partitions: spec.Partitions,
		ReplicationFactor: spec.ReplicationFactor, Config: spec.Config})
	// A topic that was recorded counts as created even if some partitions
	// are still being initialised: the cluster leader finishes them, and a
	// client that retried would only hear TOPIC_ALREADY_EXISTS.
	if err != nil && t.Name == "" {
		return kafka.Topic{}, kafkaError(err, kerr.InvalidTopicException)
	}
	return k.convert(t, k.activeSet()), nil
}

func (k kafkaCluster) DeleteTopic(ctx context.Context, name string) error {
	t, err := k.store.DeleteTopic(ctx, name)
	if t.Name != "" {
		return nil // deleted; the cluster leader drops any partitions left
	}
	return kafkaError(err, kerr.InvalidTopicException)
}

func (k kafkaCluster) CreatePartitions(ctx context.Context, name string, count int32) error {
	t, err := k.store.CreatePartitions(ctx, name, count)
	if t.Name != "" {
		return nil // recorded; the cluster leader creates any left
	}
	return kafkaError(err, kerr.InvalidPartitions)
}

// kafkaError wraps a store error with the Kafka code a client acts on;
// invalid is the code for ErrInvalidTopic, which means a bad name for a new
// topic and a bad count for new partitions.
func kafkaError(err error, invalid *kerr.Error) error {
	var code *kerr.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrTopicExists):
		code = kerr.TopicAlreadyExists
	case errors.Is(err, raft.ErrUnknownTopic):
		code = kerr.UnknownTopicOrPartition
	case errors.Is(err, raft.ErrInvalidTopic):
		code = invalid
	case errors.Is(err, raft.ErrReplicationFactor):
		code = kerr.InvalidReplicationFactor
	case errors.Is(err, raft.ErrInvalidUpdate):
		code = invalid
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, raft.ErrNotBootstrapped), errors.Is(err, raft.ErrClosed):
		code = kerr.RequestTimedOut
	default:
		code = kerr.UnknownServerError
	}
	return fmt.Errorf("%w: %v", code, err)
}

// AllocateProducerID hands out a cluster-wide unique producer id.
func (k kafkaCluster) AllocateProducerID(ctx context.Context) (int64, error) {
	id, err := k.store.AllocateProducerID(ctx)
	if err != nil {
		return 0, kafkaError(err, kerr.UnknownServerError)
	}
	return id, nil
}

// Coordinator names the leader of the Raft group holding the consumer
// group's offsets.
func (k kafkaCluster) Coordinator(group string) (int32, bool) {
	id, ok := k.store.ConsumerGroupLeader(group)
	return int32(id), ok
}

func (k kafkaCluster) CommitOffsets(ctx context.Context, group string, offsets []kafka.CommittedOffset) error {
	out := make([]raft.GroupOffset, len(offsets))
	for i, o := range offsets {
		out[i] = raft.GroupOffset{Topic: o.Topic, TopicID: o.TopicID, Partition: o.Partition, Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata}
	}
	return kafkaError(k.store.CommitOffsets(ctx, group, out), kerr.InvalidRequest)
}

func (k kafkaCluster) Offsets(ctx context.Context, group string) ([]kafka.CommittedOffset, error) {
	offs, err := k.store.GroupOffsets(ctx, group)
	if err != nil {
		return nil, kafkaError(err, kerr.InvalidRequest)
	}
	out := make([]kafka.CommittedOffset, len(offs))
	for i, o := range offs {
		out[i] = kafka.CommittedOffset{Topic: o.Topic, TopicID: o.TopicID, Partition: o.Partition, Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata}
	}
	return out, nil
}

func (k kafkaCluster) DeleteGroupOffsets(ctx context.Context, group string) error {
	return kafkaError(k.store.DeleteGroupOffsets(ctx, group), kerr.InvalidRequest)
}

func (k kafkaCluster) OffsetGroups() []string { return k.store.OffsetGroups() }

// UpdateISR commits a new ISR if the partition's epochs are unchanged.
func (k kafkaCluster) UpdateISR(ctx context.Context, id [16]byte, partition int32, leaderEpoch, partitionEpoch int32, isr []int32) (kafka.Partition, error) {
	ids := make([]uint64, len(isr))
	for i, r := range isr {
		ids[i] = uint64(r)
	}
	p, err := k.store.UpdatePartition(ctx, raft.PartitionUpdate{TopicID: id, Partition: partition,
		ExpectedLeaderEpoch: leaderEpoch, ExpectedPartitionEpoch: partitionEpoch, ISR: ids})
	if err != nil {
		return kafka.Partition{}, kafkaError(err, kerr.InvalidRequest)
	}
	kp := kafka.Partition{Index: p.Partition, Leader: -1, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch,
		Replicas: ids32(p.Replicas), ISR: ids32(p.ISR)}
	if p.Leader != raft.NoLeader {
		kp.Leader = int32(p.Leader)
	}
	return kp, nil
}

// QuorumFresh reports whether the node reached the Raft quorum recently.
func (k kafkaCluster) QuorumFresh() bool { return k.quorum == nil || k.quorum.fresh() }

// partitionLimit is the Kafka listener's partition limit as the admin API
// checks a topic creation against it, with [kafka]'s defaults for what the
// request leaves out.
type partitionLimit struct {
	ks  *kafka.Server
	cfg config.Kafka
}

func (l partitionLimit) CheckNewTopic(partitions int32, replicationFactor int16) error {
	if partitions <= 0 {
		partitions = l.cfg.DefaultPartitions
	}
	if replicationFactor <= 0 {
		replicationFactor = l.cfg.DefaultReplicationFactor
	}
	return l.ks.CheckNewReplicas(partitions, replicationFactor)
}

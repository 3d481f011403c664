package kafka

import (
	"context"
	"crypto/rand"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"
)

// memCluster is a one-node Cluster held in memory, so tests of this package
// need no Raft (DESIGN.md: "a test of kafka/ needs no Raft"). The Raft-backed
// Cluster is exercised by appliance's process tests.
type memCluster struct {
	host string
	port int32
	// alone leaves out the second, unreachable broker, for tests whose
	// clients must not pick it for a request any broker can answer.
	alone atomic.Bool
	// quorumLost makes QuorumFresh false, as for a node cut off from its
	// Raft quorum.
	quorumLost atomic.Bool

	mu      sync.Mutex
	topics  map[string]Topic
	order   []string
	nextPID int64
	offsets map[string][]CommittedOffset

	// holdPurges makes DeleteTopic leave the deleted topic's offsets to
	// purgeHeld, as a Raft purge that is applied late does; held lists the
	// ids whose purge waits.
	holdPurges bool
	held       [][16]byte
	// stale, when set, is what Topic and Topics answer instead of topics,
	// as a node that has not applied the latest topic changes would, until
	// SyncTopics; syncs counts the SyncTopics calls.
	stale map[string]Topic
	syncs int
}

func newMemCluster() *memCluster { return &memCluster{topics: make(map[string]Topic)} }

func (m *memCluster) LocalNode() int32    { return 1 }
func (m *memCluster) ClusterID() string   { return "test" }
func (m *memCluster) ControllerID() int32 { return 1 }
func (m *memCluster) LiveNodes() int      { return 1 }
func (m *memCluster) Current() bool       { return true }
func (m *memCluster) Brokers() []Broker {
	if m.alone.Load() {
		return []Broker{{ID: 1, Host: m.host, Port: m.port}}
	}
	return []Broker{{ID: 1, Host: m.host, Port: m.port}, {ID: 2, Host: "127.0.0.1", Port: 1}}
}

func (m *memCluster) Topics() []Topic {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Topic
	for _, n := range m.order {
		if t, ok := m.viewLocked()[n]; ok && !slices.ContainsFunc(out, func(o Topic) bool { return o.Name == n }) {
			out = append(out, t)
		}
	}
	return out
}

func (m *memCluster) Topic(name string) (Topic, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.viewLocked()[name]
	return t, ok
}

func (m *memCluster) viewLocked() map[string]Topic {
	if m.stale != nil {
		return m.stale
	}
	return m.topics
}

// freezeView makes the topic reads answer what they answer now until the
// next SyncTopics.
func (m *memCluster) freezeView() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stale = maps.Clone(m.topics)
}

func (m *memCluster) SyncTopics(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stale = nil
	m.syncs++
	return nil
}

func (m *memCluster) CreateTopic(_ context.Context, spec TopicSpec) (Topic, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.topics[spec.Name]; ok {
		return Topic{}, fmt.Errorf("%w: %q", kerr.TopicAlreadyExists, spec.Name)
	}
	if spec.ReplicationFactor > 1 {
		return Topic{}, fmt.Errorf("%w: one node", kerr.InvalidReplicationFactor)
	}
	t := Topic{Name: spec.Name, ReplicationFactor: spec.ReplicationFactor, Config: spec.Config}
	rand.Read(t.ID[:])
	for i := range spec.Partitions {
		t.Partitions = append(t.Partitions, Partition{Index: i, Leader: 1, Replicas: []int32{1}, ISR: []int32{1}})
	}
	m.topics[spec.Name] = t
	m.order = append(m.order, spec.Name)
	return t, nil
}

// setLeader moves a partition's leadership, as an election would.
func (m *memCluster) setLeader(topic string, p, leader int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.topics[topic]
	t.Partitions[p].Leader = leader
	t.Partitions[p].LeaderEpoch++
	m.topics[topic] = t
}

func (m *memCluster) DeleteTopic(_ context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.topics[name]
	if !ok {
		return fmt.Errorf("%w: %q", kerr.UnknownTopicOrPartition, name)
	}
	delete(m.topics, name)
	m.held = append(m.held, t.ID)
	if !m.holdPurges {
		m.purgeHeldLocked()
	}
	return nil
}

// purgeHeld drops the offsets of the deleted topics whose purge was held,
// by topic id as the Raft purge does.
func (m *memCluster) purgeHeld() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.purgeHeldLocked()
}

func (m *memCluster) purgeHeldLocked() {
	for group, offs := range m.offsets {
		offs = slices.DeleteFunc(offs, func(o CommittedOffset) bool { return slices.Contains(m.held, o.TopicID) })
		if len(offs) == 0 {
			delete(m.offsets, group)
		} else {
			m.offsets[group] = offs
		}
	}
	m.held = nil
}

func (m *memCluster) CreatePartitions(_ context.Context, name string, count int32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.topics[name]
	if !ok {
		return fmt.Errorf("%w: %q", kerr.UnknownTopicOrPartition, name)
	}
	for i := int32(len(t.Partitions)); i < count; i++ {
		t.Partitions = append(t.Partitions, Partition{Index: i, Leader: 1, Replicas: []int32{1}, ISR: []int32{1}})
	}
	m.topics[name] = t
	return nil
}

func (m *memCluster) AllocateProducerID(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nextPID++
	return m.nextPID, nil
}

func (m *memCluster) Coordinator(string) (int32, bool) { return 1, true }

func (m *memCluster) CommitOffsets(_ context.Context, group string, offsets []CommittedOffset) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.offsets == nil {
		m.offsets = make(map[string][]CommittedOffset)
	}
	// Keyed as the Raft state machine keys them: by topic id, partition.
	cur := m.offsets[group]
	for _, o := range offsets {
		cur = slices.DeleteFunc(cur, func(c CommittedOffset) bool {
			return c.TopicID == o.TopicID && c.Topic == o.Topic && c.Partition == o.Partition
		})
		cur = append(cur, o)
	}
	m.offsets[group] = cur
	return nil
}

func (m *memCluster) Offsets(_ context.Context, group string) ([]CommittedOffset, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]CommittedOffset(nil), m.offsets[group]...), nil
}

func (m *memCluster) DeleteGroupOffsets(_ context.Context, group string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.offsets, group)
	return nil
}

func (m *memCluster) OffsetGroups() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for g := range m.offsets {
		out = append(out, g)
	}
	return out
}

func (m *memCluster) QuorumFresh() bool { return !m.quorumLost.Load() }

// setReplicas gives a partition replicas and an ISR, as a reassignment
// would; the other replicas exist only in the metadata.
func (m *memCluster) setReplicas(topic string, p int32, replicas, isr []int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.topics[topic]
	t.Partitions[p].Replicas, t.Partitions[p].ISR = replicas, isr
	t.Partitions[p].PartitionEpoch++
	m.topics[topic] = t
}

func (m *memCluster) UpdateISR(_ context.Context, id [16]byte, partition int32, leaderEpoch, partitionEpoch int32, isr []int32) (Partition, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, t := range m.topics {
		if t.ID != id {
			continue
		}
		p := &t.Partitions[partition]
		if p.LeaderEpoch != leaderEpoch || p.PartitionEpoch != partitionEpoch {
			return *p, fmt.Errorf("stale ISR update")
		}
		p.ISR = append([]int32(nil), isr...)
		p.PartitionEpoch++
		m.topics[name] = t
		return *p, nil
	}
	return Partition{}, fmt.Errorf("%w: unknown topic id", kerr.UnknownTopicOrPartition)
}

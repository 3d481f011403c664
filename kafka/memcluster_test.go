package kafka

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
)

// memCluster is a one-node Cluster held in memory, so tests of this package
// need no Raft (DESIGN.md: "a test of kafka/ needs no Raft"). The Raft-backed
// Cluster is exercised by appliance's process tests.
type memCluster struct {
	host string
	port int32

	mu      sync.Mutex
	topics  map[string]Topic
	order   []string
	nextPID int64
	offsets map[string][]CommittedOffset
}

func newMemCluster() *memCluster { return &memCluster{topics: make(map[string]Topic)} }

func (m *memCluster) LocalNode() int32    { return 1 }
func (m *memCluster) ClusterID() string   { return "test" }
func (m *memCluster) ControllerID() int32 { return 1 }
func (m *memCluster) LiveNodes() int      { return 1 }
func (m *memCluster) Current() bool       { return true }
func (m *memCluster) Brokers() []Broker {
	return []Broker{{ID: 1, Host: m.host, Port: m.port}, {ID: 2, Host: "127.0.0.1", Port: 1}}
}

func (m *memCluster) Topics() []Topic {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Topic
	for _, n := range m.order {
		if t, ok := m.topics[n]; ok {
			out = append(out, t)
		}
	}
	return out
}

func (m *memCluster) Topic(name string) (Topic, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.topics[name]
	return t, ok
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
	if _, ok := m.topics[name]; !ok {
		return fmt.Errorf("%w: %q", kerr.UnknownTopicOrPartition, name)
	}
	delete(m.topics, name)
	return nil
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
	cur := m.offsets[group]
	for _, o := range offsets {
		replaced := false
		for i := range cur {
			if cur[i].Topic == o.Topic && cur[i].Partition == o.Partition {
				cur[i], replaced = o, true
			}
		}
		if !replaced {
			cur = append(cur, o)
		}
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

func (m *memCluster) QuorumFresh() bool { return true }

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

package raft

import (
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"slices"
)

// ClusterGroup is the Raft group that holds the node registry and the topics.
const ClusterGroup uint64 = 1

// NoLeader is the Leader of a partition that has no eligible leader.
// Node ids start at 1, so 0 never names a node.
const NoLeader uint64 = 0

// TopicID is a topic's 16-byte identity, fixed at creation; names can be
// reused after a delete, ids never are.
type TopicID [16]byte

// String renders the id as Kafka does: URL-safe base64 without padding.
func (id TopicID) String() string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// MarshalText implements encoding.TextMarshaler.
func (id TopicID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *TopicID) UnmarshalText(b []byte) error {
	n, err := base64.RawURLEncoding.Decode(id[:], b)
	if err != nil || n != len(id) {
		return fmt.Errorf("topic id %q: want 22 characters of URL-safe base64", b)
	}
	return nil
}

// IsZero reports whether the id is unset.
func (id TopicID) IsZero() bool { return id == TopicID{} }

// GroupFor returns the Raft group that owns a partition. It is a pure function
// of the topic id and partition number, so the mapping never changes once a
// topic exists; groups is the partition-group count fixed at bootstrap.
func GroupFor(id TopicID, partition int32, groups int) uint64 {
	h := fnv.New32a()
	h.Write(id[:])
	h.Write([]byte{byte(partition >> 24), byte(partition >> 16), byte(partition >> 8), byte(partition)})
	return ClusterGroup + 1 + uint64(h.Sum32()%uint32(groups))
}

// NodeState is where a node is in its membership life cycle.
type NodeState string

// Node states. A removed node's id is never reused: Raft refuses to re-add a
// removed replica id.
const (
	NodeJoining NodeState = "joining" // added by an operator, not yet registered itself
	NodeActive  NodeState = "active"  // registered its addresses; eligible for new replicas
	NodeRemoved NodeState = "removed" // removed from every group
)

// Node is one entry of the node registry.
type Node struct {
	ID           uint64            `json:"id"`
	RaftAddress  string            `json:"raft_address"`
	KafkaAddress string            `json:"kafka_address,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	State        NodeState         `json:"state"`
}

// Topic is a topic as the cluster group records it.
type Topic struct {
	Name              string            `json:"name"`
	ID                TopicID           `json:"id"`
	Partitions        int32             `json:"partitions"`
	ReplicationFactor int16             `json:"replication_factor"`
	Config            map[string]string `json:"config,omitempty"`
	// Assignment is the replica list of each partition, preferred leader
	// first, as chosen at creation.
	Assignment [][]uint64 `json:"assignment"`
}

// Partition is the replicated state of one partition, owned by its group.
type Partition struct {
	Topic     string   `json:"topic"`
	TopicID   TopicID  `json:"topic_id"`
	Partition int32    `json:"partition"`
	Replicas  []uint64 `json:"replicas"`
	// Leader is the leading node, or NoLeader when the partition is offline.
	Leader      uint64   `json:"leader"`
	LeaderEpoch int32    `json:"leader_epoch"`
	ISR         []uint64 `json:"isr"`
	// PartitionEpoch rises on every change of leader, ISR or replicas.
	PartitionEpoch int32 `json:"partition_epoch"`
}

func (t *Topic) clone() *Topic {
	c := *t
	c.Config = cloneMap(t.Config)
	c.Assignment = make([][]uint64, len(t.Assignment))
	for i, r := range t.Assignment {
		c.Assignment[i] = slices.Clone(r)
	}
	return &c
}

func (n *Node) clone() *Node {
	c := *n
	c.Labels = cloneMap(n.Labels)
	return &c
}

func (p *Partition) clone() *Partition {
	c := *p
	c.Replicas = slices.Clone(p.Replicas)
	c.ISR = slices.Clone(p.ISR)
	return &c
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// partKey identifies a partition inside a partition group.
type partKey struct {
	id TopicID
	p  int32
}

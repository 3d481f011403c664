package api

// NoLeader is the leader of a partition that has none (offline), and the
// previous leader of one that had none.
const NoLeader uint64 = 0

// Error is the body of every non-2xx answer: the error's own text, which
// says what failed and what to do.
type Error struct {
	Error string `json:"error"`
}

// Node states, Node.State.
const (
	NodeJoining = "joining" // added by an operator, not yet registered itself
	NodeActive  = "active"  // registered its addresses; eligible for new replicas
	NodeRemoved = "removed" // removed from every Raft group
)

// Node is one member of the cluster: GET /v1/nodes lists them; POST
// /v1/nodes and DELETE /v1/nodes/{id} answer with the node.
type Node struct {
	ID           uint64            `json:"id"`
	RaftAddress  string            `json:"raft_address"`
	KafkaAddress string            `json:"kafka_address,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	State        string            `json:"state"` // NodeJoining, NodeActive or NodeRemoved
}

// Topic is a topic: GET /v1/topics lists them; POST /v1/topics and DELETE
// /v1/topics/{name} answer with the topic.
type Topic struct {
	Name string `json:"name"`
	// ID is Kafka's topic UUID in URL-safe base64 without padding, as
	// Kafka's tools print it.
	ID                string            `json:"id"`
	Partitions        int32             `json:"partitions"`
	ReplicationFactor int16             `json:"replication_factor"`
	Config            map[string]string `json:"config,omitempty"`
	// Assignment is each partition's replica list, preferred leader first,
	// as chosen at creation.
	Assignment [][]uint64 `json:"assignment"`
}

// Partition is one partition's replicated state. POST
// /v1/topics/{name}/partitions/{p}/elect answers with it.
type Partition struct {
	Topic     string   `json:"topic"`
	TopicID   string   `json:"topic_id"`
	Partition int32    `json:"partition"`
	Replicas  []uint64 `json:"replicas"`
	// Leader is the leading node, NoLeader when the partition is offline.
	Leader      uint64   `json:"leader"`
	LeaderEpoch int32    `json:"leader_epoch"`
	ISR         []uint64 `json:"isr"`
	// PartitionEpoch rises on every change of leader, ISR or replicas.
	PartitionEpoch int32 `json:"partition_epoch"`
}

// PartitionState is a partition's replicated state and the Raft group
// that owns it: Partition's fields and Group.
type PartitionState struct {
	Topic          string   `json:"topic"`
	TopicID        string   `json:"topic_id"`
	Partition      int32    `json:"partition"`
	Replicas       []uint64 `json:"replicas"`
	Leader         uint64   `json:"leader"` // NoLeader when offline
	LeaderEpoch    int32    `json:"leader_epoch"`
	ISR            []uint64 `json:"isr"`
	PartitionEpoch int32    `json:"partition_epoch"`
	Group          uint64   `json:"group"`
}

// TopicDescription is the body of GET /v1/topics/{name}.
type TopicDescription struct {
	Topic
	PartitionStates []PartitionState `json:"partition_states"`
}

// Cluster is the body of GET /v1/cluster: the members and every Raft group
// as the answering node sees them.
type Cluster struct {
	Cluster         string  `json:"cluster"`
	NodeID          uint64  `json:"node_id"`
	Version         string  `json:"version"`
	Ready           bool    `json:"ready"`
	PartitionGroups int     `json:"partition_groups"`
	Nodes           []Node  `json:"nodes"`
	Groups          []Group `json:"groups"`
}

// Group is one Raft group as the answering node sees it.
type Group struct {
	ID           uint64 `json:"id"`
	Leader       uint64 `json:"leader"` // 0 when unknown
	AppliedIndex uint64 `json:"applied_index"`
	Partitions   int    `json:"partitions"` // 0 for the cluster group
	// The local replica's Raft log: the entries on disk and the newest
	// snapshot's index.
	FirstIndex    uint64 `json:"first_index"`
	LastIndex     uint64 `json:"last_index"`
	SnapshotIndex uint64 `json:"snapshot_index"`
	// Outbox is the group's event outbox, nil when this node does not run
	// the group.
	Outbox *Outbox `json:"outbox,omitempty"`
}

// Outbox is a Raft group's event outbox.
type Outbox struct {
	Pending int    `json:"pending"`  // events not yet acknowledged by NATS
	LastSeq uint64 `json:"last_seq"` // the newest event's seq, 0 if none
	Acked   uint64 `json:"acked"`    // the publisher's mark
	// Dropped counts events dropped unpublished because the outbox was
	// full, since the group began.
	Dropped uint64 `json:"dropped"`
}

// CreateTopicRequest is the body of POST /v1/topics.
type CreateTopicRequest struct {
	Name              string            `json:"name"`
	Partitions        int32             `json:"partitions"`
	ReplicationFactor int16             `json:"replication_factor"`
	Config            map[string]string `json:"config,omitempty"`
}

// AddNodeRequest is the body of POST /v1/nodes.
type AddNodeRequest struct {
	ID          uint64 `json:"id"`
	RaftAddress string `json:"raft_address"`
	// Force adds the node even though nothing answers at RaftAddress as a
	// node of this cluster yet. It joins as a non-voter either way, so it
	// costs the cluster no quorum until it has caught up.
	Force bool `json:"force,omitempty"`
}

// ElectRequest is the body of POST /v1/topics/{name}/partitions/{p}/elect
// (and of .../leader, its older name).
type ElectRequest struct {
	To     uint64 `json:"to"`     // the node to elect; 0 lets the policy choose
	Leader uint64 `json:"leader"` // the same, as .../leader takes it
}

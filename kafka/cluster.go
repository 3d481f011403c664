package kafka

import "context"

// Cluster is the metadata the Kafka layer reads and the changes it asks
// for. appliance adapts raft.Store to it, so this package never imports
// raft. Reads come from the local replica and may lag; methods that change
// the cluster commit through Raft before they return.
//
// Errors from the mutating methods wrap a kerr value (kerr.TopicAlreadyExists,
// kerr.InvalidReplicationFactor, ...) where a Kafka error code fits, so
// handlers answer with that code and the error's text as the message.
type Cluster interface {
	// LocalNode is this node's id, the broker id clients see.
	LocalNode() int32
	// ClusterID is the id Metadata and DescribeCluster report.
	ClusterID() string
	// ControllerID is the node clients should send admin requests to; any
	// reeve node accepts them, so it is a live node, preferably this one.
	ControllerID() int32
	// Brokers returns the active nodes with their advertised Kafka address.
	Brokers() []Broker
	// Topics returns every topic with its partitions' current state.
	Topics() []Topic
	// Topic returns one topic by name.
	Topic(name string) (Topic, bool)
	// CreateTopic creates a topic and waits until its partitions exist.
	CreateTopic(ctx context.Context, spec TopicSpec) (Topic, error)
	// DeleteTopic deletes a topic.
	DeleteTopic(ctx context.Context, name string) error
	// CreatePartitions raises a topic's partition count to count.
	CreatePartitions(ctx context.Context, name string, count int32) error
	// LiveNodes is the number of nodes new replicas may be placed on.
	LiveNodes() int
	// Current reports whether the local view has caught up with the
	// cluster (after a restart, the log has been replayed). Until it has, a
	// topic missing from the view may still exist, so no log is deleted.
	Current() bool
	// SyncTopics waits until the local view holds every topic created or
	// deleted before the call, for a read that must not act on a name's
	// previous topic.
	SyncTopics(ctx context.Context) error

	// Coordinator returns the node that coordinates a consumer group: the
	// leader of the Raft group its offsets live in, when one is known.
	Coordinator(group string) (int32, bool)
	// CommitOffsets stores committed offsets of a group through Raft; they
	// survive the loss of the coordinator. Each carries the id of the topic
	// it was committed for, and is kept under that id: the purge of a
	// deleted topic drops its id's offsets only, never those of a topic
	// created later under the same name.
	CommitOffsets(ctx context.Context, group string, offsets []CommittedOffset) error
	// Offsets returns a group's committed offsets, read linearizably. They
	// may include offsets of deleted topics not purged yet, under those
	// topics' ids, and legacy offsets with a zero TopicID; the caller keeps
	// what belongs to the topics of today.
	Offsets(ctx context.Context, group string) ([]CommittedOffset, error)
	// DeleteGroupOffsets drops every committed offset of a group.
	DeleteGroupOffsets(ctx context.Context, group string) error
	// OffsetGroups lists the groups that have committed offsets.
	OffsetGroups() []string

	// AllocateProducerID returns a producer id that was never handed out
	// before, by any node, across restarts.
	AllocateProducerID(ctx context.Context) (int64, error)

	// UpdateISR replaces a partition's ISR through Raft, if its leader and
	// partition epochs are still the given ones; it returns the partition
	// as committed.
	UpdateISR(ctx context.Context, topicID [16]byte, partition int32, leaderEpoch, partitionEpoch int32, isr []int32) (Partition, error)
	// QuorumFresh reports whether this node has reached the Raft quorum
	// within the election timeout; a leader that has not stops taking
	// writes, so a partitioned leader cannot acknowledge alone.
	QuorumFresh() bool
}

// CommittedOffset is one partition's committed position in a group.
type CommittedOffset struct {
	Topic string
	// TopicID is the id the topic's name had when the offset was
	// committed. It is zero for a legacy offset, committed before reeve
	// kept ids with offsets, which belongs to whichever topic has the name
	// (raft/offsets.go says how such offsets are replaced and purged).
	TopicID     [16]byte
	Partition   int32
	Offset      int64
	LeaderEpoch int32
	Metadata    string
}

// Broker is a node as Kafka clients see it.
type Broker struct {
	ID   int32
	Host string
	Port int32
	Rack *string
}

// Topic is a topic as Kafka clients see it.
type Topic struct {
	Name              string
	ID                [16]byte
	ReplicationFactor int16
	Config            map[string]string
	Partitions        []Partition // by partition index; a partition still being created has Leader -1
}

// Partition is the replicated state of one partition.
type Partition struct {
	Index          int32
	Leader         int32 // -1 when there is none
	LeaderEpoch    int32
	PartitionEpoch int32
	Replicas       []int32
	ISR            []int32
	Offline        []int32 // replicas on nodes that are not active
}

// TopicSpec asks for a new topic.
type TopicSpec struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16
	Config            map[string]string
}

package raft

import (
	"encoding/json"
	"fmt"
)

// Commands are the only way state changes. Each is encoded as
//
//	byte 0   format version (commandVersion)
//	byte 1   kind
//	byte 2.. the command's JSON body
//
// The log outlives the binary that wrote it, so kinds and field names are never
// reused; a state machine that meets a newer version or an unknown kind rejects
// the entry (every replica rejects it alike) instead of guessing.
const commandVersion byte = 1

type kind uint8

// Cluster group kinds.
const (
	kindBootstrap           kind = 1
	kindRegisterNode        kind = 2
	kindAddNode             kind = 3
	kindRemoveNode          kind = 4
	kindCreateTopic         kind = 5
	kindDeleteTopic         kind = 6
	kindForgetTopic         kind = 7
	kindAddPartitions       kind = 8
	kindAllocateProducerIDs kind = 9
)

// Partition group kinds.
const (
	kindInitPartitions   kind = 20
	kindUpdatePartitions kind = 21
	kindRemovePartitions kind = 22
	kindCommitOffsets    kind = 23
	kindDeleteOffsets    kind = 24
)

// Kinds every group applies: the event outbox (outbox.go).
const (
	kindAppendEvents kind = 30
	kindAckEvents    kind = 31
)

// bootstrapCmd fixes the cluster's name and partition-group count. The first
// one applied wins; a later one with the same settings is a no-op.
type bootstrapCmd struct {
	Name            string `json:"name"`
	PartitionGroups int    `json:"partition_groups"`
}

// registerNodeCmd is sent by a node about itself at every start, so a changed
// Kafka address or label reaches the registry.
type registerNodeCmd struct {
	Node Node `json:"node"`
}

// addNodeCmd records an operator's decision to add a node before the Raft
// membership changes, so the registry names it while it joins.
type addNodeCmd struct {
	ID          uint64 `json:"id"`
	RaftAddress string `json:"raft_address"`
}

type removeNodeCmd struct {
	ID uint64 `json:"id"`
}

// createTopicCmd carries everything non-deterministic (the id, the live
// nodes) so that the state machine's choice of replicas is deterministic.
type createTopicCmd struct {
	Name              string            `json:"name"`
	ID                TopicID           `json:"id"`
	Partitions        int32             `json:"partitions"`
	ReplicationFactor int16             `json:"replication_factor"`
	Config            map[string]string `json:"config,omitempty"`
	Candidates        []uint64          `json:"candidates"`
}

// addPartitionsCmd raises a topic's partition count; like createTopicCmd it
// carries the live nodes so placement is deterministic.
type addPartitionsCmd struct {
	Name       string   `json:"name"`
	ID         TopicID  `json:"id"`
	Count      int32    `json:"count"`
	Candidates []uint64 `json:"candidates"`
}

type deleteTopicCmd struct {
	Name string `json:"name"`
}

// forgetTopicCmd clears the tombstone of a deleted topic once every partition
// group has dropped its partitions.
type forgetTopicCmd struct {
	ID TopicID `json:"id"`
}

// initPartitionsCmd creates partition state; partitions that exist already are
// left as they are, so the command is safe to repeat.
type initPartitionsCmd struct {
	Partitions []Partition `json:"partitions"`
}

type removePartitionsCmd struct {
	TopicID TopicID `json:"topic_id"`
	// Topic is its name: the legacy committed offsets of that name go with
	// the offsets of the id (offsets.go).
	Topic string `json:"topic,omitempty"`
}

type updatePartitionsCmd struct {
	Updates []PartitionUpdate `json:"updates"`
	// Outbox is set by every binary that keeps the event outbox: only then
	// does an applied update append events. Entries written before the
	// outbox existed append none, so a replica that replays them after an
	// upgrade (from whichever old snapshot it had) builds the same outbox,
	// with the same sequence numbers, as every other replica.
	Outbox bool `json:"outbox,omitempty"`
}

// PartitionUpdate is a compare-and-set on one partition: it applies only when
// the partition's epochs still equal the expected ones, so a stale controller
// or a replayed proposal is rejected with ErrStale.
type PartitionUpdate struct {
	TopicID                TopicID `json:"topic_id"`
	Partition              int32   `json:"partition"`
	ExpectedLeaderEpoch    int32   `json:"expected_leader_epoch"`
	ExpectedPartitionEpoch int32   `json:"expected_partition_epoch"`
	// Leader, when set, is the new leader (NoLeader takes the partition
	// offline). A change of leader raises the leader epoch.
	Leader *uint64 `json:"leader,omitempty"`
	// ISR, when non-nil, replaces the in-sync replica set.
	ISR []uint64 `json:"isr"` // null keeps the ISR; [] empties it
	// Unclean allows a leader outside the ISR; the ISR then becomes that
	// leader alone.
	Unclean bool `json:"unclean,omitempty"`
	// Time is when the proposer made the change, in Unix milliseconds; the
	// state machine copies it into the events the change appends and never
	// reads a clock itself. UpdatePartitions sets it when it is zero.
	Time int64 `json:"time,omitempty"`
	// Election, when set, is the controller's account of a leader change;
	// it is carried into the leader_changed or partition_offline event.
	Election *ElectionInfo `json:"election,omitempty"`
}

// ElectionInfo is what the controller that decided a leader change knows
// about it and the state machine does not. All of it is optional.
type ElectionInfo struct {
	// Reason is why the election ran: leader_timeout, controlled_shutdown,
	// rebalance or manual.
	Reason string `json:"reason,omitempty"`
	// Policy names the policy that decided (e.g. "first-isr", a module's
	// name, "operator"), and PolicyDigest the module's digest, if any.
	Policy       string `json:"policy,omitempty"`
	PolicyDigest string `json:"policy_digest,omitempty"`
	// Detail is the policy's explanation of its decision, as the decision
	// log's "why"; the event keeps its first maxEventText bytes.
	Detail string `json:"detail,omitempty"`
	// Controller is the node that decided and proposed the change.
	Controller uint64 `json:"controller,omitempty"`
	// LatencyMs is how long the decision took, from the election's start
	// to the proposal, in milliseconds.
	LatencyMs float64 `json:"latency_ms,omitempty"`
}

// result is what a state machine returns for one command (or one item of a
// batch): an error code, a message for operators, and the resulting state.
type result struct {
	Code      string     `json:"code,omitempty"`
	Message   string     `json:"message,omitempty"`
	Topic     *Topic     `json:"topic,omitempty"`
	Partition *Partition `json:"partition,omitempty"`
	Items     []result   `json:"items,omitempty"`
	// ProducerIDs is the block an allocation got.
	ProducerIDs *idBlock `json:"producer_ids,omitempty"`
	// EventsDropped counts the unpublished events this command pushed out
	// of a full outbox, so that the proposer, and only it, logs the loss.
	EventsDropped uint64 `json:"events_dropped,omitempty"`
}

func (r result) err() error {
	if r.Code == "" {
		return nil
	}
	sentinel, ok := errCodes[r.Code]
	if !ok {
		sentinel = ErrUnsupportedCommand
	}
	return fmt.Errorf("%w: %s", sentinel, r.Message)
}

func failed(err error, format string, args ...any) result {
	return result{Code: codeOf(err), Message: fmt.Sprintf(format, args...)}
}

func encode(k kind, body any) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode command %d: %w", k, err)
	}
	return append([]byte{commandVersion, byte(k)}, b...), nil
}

// decode splits an entry into its kind and body; it fails on versions this
// binary does not know.
func decode(cmd []byte) (kind, []byte, error) {
	if len(cmd) < 2 {
		return 0, nil, fmt.Errorf("%w: entry of %d bytes", ErrUnsupportedCommand, len(cmd))
	}
	if cmd[0] != commandVersion {
		return 0, nil, fmt.Errorf("%w: format version %d, this binary knows %d; upgrade reeve on this node",
			ErrUnsupportedCommand, cmd[0], commandVersion)
	}
	return kind(cmd[1]), cmd[2:], nil
}

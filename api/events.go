package api

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Event types (Event.Type), the third token of every event subject.
const (
	// EventLeaderChanged: a partition has a new leader (PreviousLeader may
	// be NoLeader: the partition came back online).
	EventLeaderChanged = "leader_changed"
	// EventPartitionOffline: a partition lost its leader and no replica was
	// eligible; Leader is NoLeader.
	EventPartitionOffline = "partition_offline"
	EventISRShrunk        = "isr_shrunk"       // replicas left a partition's ISR, leader unchanged
	EventISRExpanded      = "isr_expanded"     // replicas joined a partition's ISR, leader unchanged
	EventNodeUp           = "node_up"          // Node became reachable
	EventNodeDown         = "node_down"        // Node stopped answering heartbeats
	EventPolicyLoaded     = "policy_loaded"    // a policy module was loaded or replaced
	EventPolicyRejected   = "policy_rejected"  // a policy module was refused; the old one stays
	EventPolicyFellBack   = "policy_fell_back" // a policy failed a round; first-isr decided it
	// EventStorageFailed: a partition's log failed on Node (an fsync
	// error, in Detail); it takes no writes there until a restart.
	EventStorageFailed = "storage_failed"
)

// EventTypePrefix and EventTypeVersion make an envelope's versioned type,
// e.g. io.reeve.leader_changed.v1.
const (
	EventTypePrefix  = "io.reeve."
	EventTypeVersion = ".v1"
)

// Envelope is the JSON body of every event message: CloudEvents 1.0
// attributes around the event itself.
type Envelope struct {
	SpecVersion     string    `json:"specversion"` // "1.0"
	ID              string    `json:"id"`          // the event's id, also the Nats-Msg-Id header
	Type            string    `json:"type"`        // io.reeve.<type>.v1
	Source          string    `json:"source"`      // reeve://<cluster>/group/<group>
	Time            time.Time `json:"time"`
	Subject         string    `json:"subject,omitempty"` // <topic>/<partition> for partition events
	DataContentType string    `json:"datacontenttype"`   // "application/json"
	Data            Event     `json:"data"`
}

// Event is what happened. Which fields are set depends on Type:
//
//   - partition events (leader_changed, partition_offline, isr_shrunk,
//     isr_expanded): Topic through PreviousISR, as the change left the
//     partition and as it was before; for a leader change also the
//     controller's account (Reason, Policy, PolicyDigest, Controller,
//     LatencyMs, Detail) when it gave one, and Unclean;
//   - node events: Node;
//   - policy events: Policy, PolicyDigest, Detail (the reason or error),
//     and Node, the node that loaded or ran the policy.
//
// In JSON, text, list and node fields are left out when empty, and the
// partition's numbers (partition, leaders, epochs) when the event has no
// TopicID and they are zero, so a node event does not read as "partition 0
// offline".
type Event struct {
	// Seq is the event's place in its Raft group's outbox, from 1.
	Seq uint64 `json:"seq"`
	// ID is "<cluster>-<group>-<seq>", unique per cluster and the same on a
	// republish.
	ID    string `json:"id,omitempty"`
	Group uint64 `json:"group,omitempty"`
	Type  string `json:"type"`
	// Time is when the change was proposed, in Unix milliseconds.
	Time int64 `json:"time"`

	Topic          string   `json:"topic,omitempty"`
	TopicID        string   `json:"topic_id,omitempty"` // Kafka's topic UUID, base64
	Partition      int32    `json:"partition"`
	PreviousLeader uint64   `json:"previous_leader"` // NoLeader when there was none
	Leader         uint64   `json:"leader"`          // NoLeader when offline
	LeaderEpoch    int32    `json:"leader_epoch"`
	PartitionEpoch int32    `json:"partition_epoch"`
	Replicas       []uint64 `json:"replicas,omitzero"`
	ISR            []uint64 `json:"isr,omitzero"`
	PreviousISR    []uint64 `json:"previous_isr,omitzero"`

	Reason       string  `json:"reason,omitempty"`
	Policy       string  `json:"policy,omitempty"`
	PolicyDigest string  `json:"policy_digest,omitempty"`
	Controller   uint64  `json:"controller,omitempty"`
	LatencyMs    float64 `json:"latency_ms,omitempty"`
	// Unclean is set on a leader change whose new leader was not in the ISR.
	Unclean bool   `json:"unclean,omitempty"`
	Node    uint64 `json:"node,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// MarshalJSON leaves out the zero partition numbers of an event that is
// not about a partition. Decoding needs no counterpart: an absent field is
// a zero.
func (e Event) MarshalJSON() ([]byte, error) {
	type fields Event // without this method
	if e.TopicID != "" {
		return json.Marshal(fields(e))
	}
	// Fields of the outer struct hide the embedded ones of the same JSON
	// name, so nil pointers here remove those from the output.
	return json.Marshal(struct {
		fields
		Partition      *int32  `json:"partition,omitempty"`
		PreviousLeader *uint64 `json:"previous_leader,omitempty"`
		Leader         *uint64 `json:"leader,omitempty"`
		LeaderEpoch    *int32  `json:"leader_epoch,omitempty"`
		PartitionEpoch *int32  `json:"partition_epoch,omitempty"`
	}{fields(e), nonZero(e.Partition), nonZero(e.PreviousLeader), nonZero(e.Leader), nonZero(e.LeaderEpoch), nonZero(e.PartitionEpoch)})
}

func nonZero[T int32 | uint64](v T) *T {
	if v == 0 {
		return nil
	}
	return &v
}

// IsPolicyEvent reports whether an event type is about a policy module.
func IsPolicyEvent(typ string) bool {
	return typ == EventPolicyLoaded || typ == EventPolicyRejected || typ == EventPolicyFellBack
}

// Event subjects: the event type always comes third,
// <prefix>.<cluster>.<type>.<topic>.<partition> for a partition's events,
// <prefix>.<cluster>.<type>.<node> for a node's and
// <prefix>.<cluster>.<type>.<policy> for a policy's, so subscribers filter
// with NATS wildcards: "reeve.edge1.leader_changed.>" for every leader
// change, "reeve.*.*.line1~temp.*" for every event of one topic's
// partitions in any cluster.

// EventSubject is where an event is published.
func EventSubject(prefix, cluster string, ev Event) string {
	base := prefix + "." + cluster + "." + ev.Type
	switch {
	case IsPolicyEvent(ev.Type):
		return base + "." + policyToken(ev.Policy)
	case ev.Topic != "":
		return base + "." + TopicToken(ev.Topic) + "." + strconv.Itoa(int(ev.Partition))
	case ev.Node != 0:
		return base + "." + strconv.FormatUint(ev.Node, 10)
	}
	return base
}

// A Kafka topic name is letters, digits, '.', '_' and '-'. NATS splits
// subjects into tokens at '.', so a topic's '.' is written '~' in its token.
// Kafka never allows '~' in a name, so the encoding is one-to-one and
// decodes back exactly; '_' and '-' stay as they are (NATS allows them).

// TopicToken is a Kafka topic name as one NATS subject token.
func TopicToken(topic string) string { return strings.ReplaceAll(topic, ".", "~") }

// TopicFromToken reverses TopicToken.
func TopicFromToken(token string) string { return strings.ReplaceAll(token, "~", ".") }

// policyToken is a policy's name as a subject token: '.' written '~' as in
// topics, and anything NATS would not take in a token ('*', '>', white
// space, ...) written '_'.
func policyToken(name string) string {
	b := []byte(TopicToken(name))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '~') {
			b[i] = '_'
		}
	}
	return string(b)
}

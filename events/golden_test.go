package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/reeve-edge/reeve/api"
	"github.com/reeve-edge/reeve/internal/golden"
	"github.com/reeve-edge/reeve/policy"
	"github.com/reeve-edge/reeve/raft"
)

// The events are a public contract (docs/events.md): subscribers filter on
// the subjects, JetStream dedups on the Nats-Msg-Id header, and consumers
// decode the bodies. These tests pin all three for each event type, from a
// fixed raft.Event through FromRaft and Message, so a change to api.Event
// or api.Envelope fails here on its own, apart from the Raft snapshot
// (raft/snapshot_golden_test.go) and the admin API (admin/golden_test.go).
//
// A golden file, testdata/golden/<type>.json, is the message: a line
// "subject: <subject>", a line "<header>: <value>" for each header, sorted,
// an empty line, then the body exactly as Message wrote it (one line of
// JSON, which never holds a newline) and a newline that is not part of it.

// goldenTopicID is the topic's Kafka UUID, PxyafiEES22OVQLBepDTEQ.
var goldenTopicID = raft.TopicID{0x3f, 0x1c, 0x9a, 0x7e, 0x21, 0x04, 0x4b, 0x6d, 0x8e, 0x55, 0x02, 0xc1, 0x7a, 0x90, 0xd3, 0x11}

const (
	goldenTime   int64 = 1_795_615_387_412 // 2026-11-25T14:03:07.412Z
	goldenDigest       = "sha256:9b1f3c0e5d7a2b4f6e8d0c1a3b5f7e9d2c4a6b8f0e1d3c5a7b9f2e4d6c8a0b1f"
)

// partitionEvent is an event of partition p of line1.temp, from the outbox
// of its Raft group 3, with the fields partitionEvents in package raft sets.
func partitionEvent(typ raft.EventType, seq uint64, p int32, prev, leader uint64, le, pe int32, replicas, isr, prevISR []uint64) raft.Event {
	return raft.Event{Seq: seq, ID: fmt.Sprintf("site1-3-%d", seq), Group: 3, Type: typ, Time: goldenTime + int64(seq),
		Topic: "line1.temp", TopicID: goldenTopicID, Partition: p, PreviousLeader: prev, Leader: leader,
		LeaderEpoch: le, PartitionEpoch: pe, Replicas: replicas, ISR: isr, PreviousISR: prevISR}
}

// clusterEvent is ev as the Recorder of node 1 appends it to the cluster
// group's outbox: stamped with the node when it names none.
func clusterEvent(ev raft.Event, seq uint64) raft.Event {
	ev.Seq, ev.ID, ev.Group, ev.Time = seq, fmt.Sprintf("site1-1-%d", seq), raft.ClusterGroup, goldenTime+int64(seq)
	if ev.Node == 0 {
		ev.Node = 1
	}
	return ev
}

// goldenEvents has one event of each type, named for its golden file.
func goldenEvents() []raft.Event {
	// An unclean election by a module, with every field of the
	// controller's account.
	leader := partitionEvent(raft.EventLeaderChanged, 42, 2, 3, 1, 8, 11, []uint64{3, 1, 2}, []uint64{1}, []uint64{3})
	leader.Reason, leader.Policy, leader.PolicyDigest, leader.Controller = "leader_timeout", "prefer-label.wasm", goldenDigest, 2
	leader.LatencyMs, leader.Unclean, leader.Detail = 1.4, true, "no ISR replica is alive; power=mains"
	offline := partitionEvent(raft.EventPartitionOffline, 43, 5, 3, raft.NoLeader, 9, 12, []uint64{3, 1, 2}, []uint64{3}, []uint64{3})
	offline.Reason, offline.Policy, offline.Controller, offline.LatencyMs = "leader_timeout", "first-isr", 2, 0.5
	return []raft.Event{
		leader,
		offline,
		partitionEvent(raft.EventISRShrunk, 44, 0, 1, 1, 4, 7, []uint64{1, 2, 3}, []uint64{1, 2}, []uint64{1, 2, 3}),
		partitionEvent(raft.EventISRExpanded, 45, 0, 1, 1, 4, 8, []uint64{1, 2, 3}, []uint64{1, 2, 3}, []uint64{1, 2}),
		clusterEvent(raft.Event{Type: raft.EventNodeUp, Node: 3}, 7),
		clusterEvent(raft.Event{Type: raft.EventNodeDown, Node: 3}, 8),
		clusterEvent(PolicyLoad("prefer-label.wasm", goldenDigest, nil, "line1.*"), 9),
		clusterEvent(PolicyLoad("prefer-label.wasm", "sha256:00ff", errors.New("self-test: decide answered 2 decisions for 1 partition"), "line1.*"), 10),
		clusterEvent(PolicyFellBack(policy.FallbackReport{Fallback: policy.Fallback{Policy: "prefer-label.wasm", Digest: goldenDigest,
			Cause: policy.CauseTrap, Err: "wasm error: unreachable"}, Partitions: 3}), 11),
	}
}

// message is ev as the Publisher sends it, in the golden file's format.
func message(t *testing.T, ev raft.Event) (*nats.Msg, []byte) {
	t.Helper()
	msg, err := Message("reeve", "site1", ev.Group, FromRaft(ev))
	if err != nil {
		t.Fatalf("Message(%s) = %v", ev.Type, err)
	}
	if bytes.ContainsRune(msg.Data, '\n') {
		t.Fatalf("Message(%s): the body holds a newline; the golden file format needs one line", ev.Type)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "subject: %s\n", msg.Subject)
	keys := make([]string, 0, len(msg.Header))
	for k := range msg.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range msg.Header[k] {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	fmt.Fprintf(&b, "\n%s\n", msg.Data)
	return msg, b.Bytes()
}

const (
	regenerate = "go test ./events -run TestGolden -update"
	contract   = "The events' subjects, headers and JSON are a public contract, documented in docs/events.md: update the document too."
)

func TestGolden(t *testing.T) {
	for _, ev := range goldenEvents() {
		t.Run(string(ev.Type), func(t *testing.T) {
			path := filepath.Join("testdata", "golden", string(ev.Type)+".json")
			_, got := message(t, ev)
			golden.Check(t, path, got, regenerate, string(ev.Type)+" event: "+contract)
		})
	}
}

// TestGolden_typesCovered keeps the golden events in step with the event
// types: a new type needs a golden file too.
func TestGolden_typesCovered(t *testing.T) {
	var got []string
	for _, ev := range goldenEvents() {
		got = append(got, string(ev.Type))
	}
	want := []string{api.EventLeaderChanged, api.EventPartitionOffline, api.EventISRShrunk, api.EventISRExpanded,
		api.EventNodeUp, api.EventNodeDown, api.EventPolicyLoaded, api.EventPolicyRejected, api.EventPolicyFellBack}
	if !slices.Equal(got, want) {
		t.Errorf("golden event types = %v, want %v", got, want)
	}
}

// TestGolden_nodeAndPolicyEventsHaveNoPartition pins the rule of
// api.Event.MarshalJSON: an event that is not about a partition has no
// partition, leader or epoch keys (their zeros would read as "partition 0
// offline"), and its envelope no subject.
func TestGolden_nodeAndPolicyEventsHaveNoPartition(t *testing.T) {
	partitionKeys := []string{"topic", "topic_id", "partition", "previous_leader", "leader", "leader_epoch", "partition_epoch",
		"replicas", "isr", "previous_isr"}
	for _, ev := range goldenEvents() {
		if ev.Topic != "" {
			continue
		}
		msg, _ := message(t, ev)
		var env struct {
			Subject *string                    `json:"subject"`
			Data    map[string]json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(msg.Data, &env); err != nil {
			t.Fatalf("%s: decoding the body = %v", ev.Type, err)
		}
		if env.Subject != nil {
			t.Errorf("%s: envelope subject = %q, want none", ev.Type, *env.Subject)
		}
		for _, k := range partitionKeys {
			if v, ok := env.Data[k]; ok {
				t.Errorf("%s: data has %q = %s, want no such key", ev.Type, k, v)
			}
		}
		if _, ok := env.Data["node"]; !ok {
			t.Errorf("%s: data has no \"node\" key, want the node it is about", ev.Type)
		}
	}
}

package raft

import (
	"bytes"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"

	sm "github.com/lni/dragonboat/v4/statemachine"

	"github.com/reeve-edge/reeve/internal/golden"
)

// The snapshot is the on-disk format of both state machines: a node that
// restarts, or a follower that is sent a snapshot, reads bytes that an
// older binary may have written. These tests pin those bytes, so a change
// to the JSON of Node, Topic, Partition, Event, the outbox, the offsets or
// the producer ids fails here, on its own, rather than in a cluster that
// cannot load its snapshots after an upgrade.

// goldenTime is the Time of every event, in Unix milliseconds: the events'
// time is the only input that a proposer would take from a clock.
const goldenTime int64 = 1_700_000_000_000

// goldenCases builds each state machine from real commands, as Dragonboat
// would apply them, and names its golden file; fresh returns an empty
// machine of the same kind to recover into.
var goldenCases = []struct {
	name  string
	file  string
	build func(t *testing.T) sm.IStateMachine
	fresh func() sm.IStateMachine
}{
	{"cluster", "cluster.golden", goldenCluster, func() sm.IStateMachine { return newClusterSM(newFeed()) }},
	{"partition", "partition.golden", goldenPartitions, func() sm.IStateMachine { return newPartitionSM(testPartitionGroup, newFeed()) }},
}

// mustDo applies a command and fails the test unless it and every item of
// a batch succeed: a command that failed quietly would leave the golden
// file pinning less state than this file claims.
func mustDo(t *testing.T, d *driver, k kind, body any) {
	t.Helper()
	r := d.do(k, body)
	for _, item := range append([]result{r}, r.Items...) {
		if item.Code != "" {
			t.Fatalf("command %d (%+v) = %s: %s, want success", k, body, item.Code, item.Message)
		}
	}
}

// goldenCluster has an active, a removed and a joining node besides one
// more active one, labels of two keys, two topics with config and their
// assignments, a tombstone, allocated producer ids, and an outbox with
// node and policy events of which the first is acknowledged.
func goldenCluster(t *testing.T) sm.IStateMachine {
	d := newClusterDriver(t)
	mustDo(t, d, kindBootstrap, bootstrapCmd{Name: "site-a", PartitionGroups: 4})
	for id := uint64(1); id <= 3; id++ {
		reg := registration(id)
		reg.Node.Labels["zone"] = fmt.Sprintf("z%d", id%2)
		mustDo(t, d, kindRegisterNode, reg)
	}
	mustDo(t, d, kindAddNode, addNodeCmd{ID: 4, RaftAddress: nodeAddr(4)})
	mustDo(t, d, kindCreateTopic, createTopicCmd{Name: "orders", ID: idFor("orders-1"), Partitions: 3, ReplicationFactor: 3,
		Config: map[string]string{"retention.ms": "86400000", "cleanup.policy": "delete"}, Candidates: []uint64{1, 2, 3}})
	mustDo(t, d, kindCreateTopic, createTopicCmd{Name: "payments", ID: idFor("payments-1"), Partitions: 2, ReplicationFactor: 2,
		Config: map[string]string{"min.insync.replicas": "2"}, Candidates: []uint64{1, 2, 3}})
	mustDo(t, d, kindCreateTopic, createTopicCmd{Name: "audit", ID: idFor("audit-1"), Partitions: 1, ReplicationFactor: 1, Candidates: []uint64{1, 2, 3}})
	mustDo(t, d, kindDeleteTopic, deleteTopicCmd{Name: "audit"})
	mustDo(t, d, kindRemoveNode, removeNodeCmd{ID: 3})
	mustDo(t, d, kindAllocateProducerIDs, allocateProducerIDsCmd{Count: producerIDBlock})
	mustDo(t, d, kindAllocateProducerIDs, allocateProducerIDsCmd{Count: producerIDBlock})
	mustDo(t, d, kindAppendEvents, appendEventsCmd{Events: []Event{
		{Type: EventNodeDown, Time: goldenTime, Node: 3},
		{Type: EventNodeDown, Time: goldenTime + 1000, Node: 1},
		{Type: EventNodeUp, Time: goldenTime + 1500, Node: 1},
		{Type: EventPolicyLoaded, Time: goldenTime + 2000, Policy: "prefer-label", PolicyDigest: "sha256:0f1e2d3c",
			Detail: "loaded /etc/reeve/policies/prefer-label.wasm"},
	}})
	mustDo(t, d, kindAckEvents, ackEventsCmd{UpTo: 1})
	return d.m
}

// goldenPartitions has two topics' partitions: a moved leader, an ISR
// smaller than the replicas, an offline partition, an unclean election,
// epochs that did not start at zero, events of all four partition types
// (one with every field of the controller's account) after an
// acknowledged one, and two consumer groups' committed offsets: under
// topic ids, one of them a deleted topic's, and one legacy offset without.
func goldenPartitions(t *testing.T) sm.IStateMachine {
	d := newPartitionDriver(t)
	orders, payments := idFor("orders-1"), idFor("payments-1")
	part := func(id TopicID, topic string, p int32, leader uint64, replicas, isr []uint64, le, pe int32) Partition {
		return Partition{Topic: topic, TopicID: id, Partition: p, Replicas: replicas, Leader: leader, ISR: isr, LeaderEpoch: le, PartitionEpoch: pe}
	}
	mustDo(t, d, kindInitPartitions, initPartitionsCmd{Partitions: []Partition{
		part(orders, "orders", 0, 1, []uint64{1, 2, 3}, []uint64{1, 2, 3}, 0, 0),
		part(orders, "orders", 1, 2, []uint64{2, 3, 1}, []uint64{2, 3, 1}, 0, 0),
		part(orders, "orders", 2, 3, []uint64{3, 1, 2}, []uint64{3, 1, 2}, 0, 0),
		part(payments, "payments", 0, 2, []uint64{2, 3}, []uint64{2}, 4, 7),
		part(payments, "payments", 1, 3, []uint64{3, 1}, []uint64{3}, 2, 5),
	}})
	node := func(id uint64) *uint64 { return &id }
	// The first event is the one acknowledged, and so trimmed: every event
	// type and every field of the controller's account stays in the outbox.
	mustDo(t, d, kindUpdatePartitions, updatePartitionsCmd{Outbox: true, Updates: []PartitionUpdate{
		{TopicID: orders, Partition: 0, Leader: node(2), Time: goldenTime, Election: &ElectionInfo{Reason: "rebalance", Policy: "first-isr", Controller: 2}},
	}})
	mustDo(t, d, kindAckEvents, ackEventsCmd{UpTo: 1})
	mustDo(t, d, kindUpdatePartitions, updatePartitionsCmd{Outbox: true, Updates: []PartitionUpdate{
		{TopicID: orders, Partition: 1, ISR: []uint64{2, 3}, Time: goldenTime + 10},
		{TopicID: orders, Partition: 2, Leader: node(NoLeader), ISR: []uint64{3}, Time: goldenTime + 20,
			Election: &ElectionInfo{Reason: "leader_timeout", Policy: "first-isr", Controller: 2}},
		{TopicID: payments, Partition: 0, ExpectedLeaderEpoch: 4, ExpectedPartitionEpoch: 7, ISR: []uint64{2, 3}, Time: goldenTime + 30},
		{TopicID: payments, Partition: 1, ExpectedLeaderEpoch: 2, ExpectedPartitionEpoch: 5, Leader: node(1), Unclean: true, Time: goldenTime + 40,
			Election: &ElectionInfo{Reason: "leader_timeout", Policy: "prefer-label", PolicyDigest: "sha256:0f1e2d3c",
				Detail: "no ISR replica is alive; node 1 is in rack r1", Controller: 1, LatencyMs: 1.25}},
	}})
	mustDo(t, d, kindCommitOffsets, commitOffsetsCmd{Group: "billing", Offsets: []GroupOffset{
		{Topic: "orders", TopicID: orders, Partition: 2, Offset: 88},
		{Topic: "orders", TopicID: orders, Partition: 0, Offset: 1200, LeaderEpoch: 1, Metadata: "consumer-7"},
		{Topic: "payments", TopicID: payments, Partition: 1, Offset: 5, LeaderEpoch: 3},
	}})
	// Offsets of a deleted "orders" whose purge has not come yet sort
	// beside the new topic's, by id.
	mustDo(t, d, kindCommitOffsets, commitOffsetsCmd{Group: "billing", Offsets: []GroupOffset{
		{Topic: "orders", TopicID: idFor("orders-0"), Partition: 0, Offset: 7},
	}})
	// A legacy offset, as an entry written before offsets carried a topic
	// id applies.
	mustDo(t, d, kindCommitOffsets, commitOffsetsCmd{Group: "audit-readers", Offsets: []GroupOffset{{Topic: "orders", Partition: 1, Offset: 42}}})
	return d.m
}

func save(t *testing.T, m sm.IStateMachine) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := m.SaveSnapshot(&b, nil, nil); err != nil {
		t.Fatalf("SaveSnapshot() = %v", err)
	}
	return b.Bytes()
}

const (
	regenerate = "go test ./raft -run TestSnapshotGolden -update"
	contract   = "The file pins the on-disk snapshot format: snapshots written by older nodes must still load " +
		"(check RecoverFromSnapshot with the old file before replacing it, or bump snapshotVersion)."
)

func TestSnapshotGolden(t *testing.T) {
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join("testdata", "snapshot", c.file)
			got := save(t, c.build(t))
			// A second save of the same state must not differ: map order
			// or a shared slice would make the golden file flaky.
			if again := save(t, c.build(t)); !bytes.Equal(again, got) {
				t.Fatalf("two builds of the same state saved different snapshots; %s", golden.Diff(again, got))
			}
			golden.Check(t, path, got, regenerate, contract)
		})
	}
}

// TestSnapshotGolden_recoverThenSave is the compatibility direction: the
// golden bytes, as a node of the release that wrote them left them on disk,
// load into a fresh machine, and saving that machine gives the same bytes,
// so recovering loses no field and invents none.
func TestSnapshotGolden_recoverThenSave(t *testing.T) {
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join("testdata", "snapshot", c.file)
			want := golden.Read(t, path, regenerate)
			m := c.fresh()
			if err := m.RecoverFromSnapshot(bytes.NewReader(want), nil, nil); err != nil {
				t.Fatalf("RecoverFromSnapshot(%s) = %v; snapshots written by older nodes must still load", path, err)
			}
			if got := save(t, m); !bytes.Equal(got, want) {
				t.Errorf("SaveSnapshot after RecoverFromSnapshot(%s) differs from the file; %s", path, golden.Diff(got, want))
			}
		})
	}
}

// legacyOffsetsGolden is partition.golden as the release before offsets
// carried topic ids wrote it: the same state, its offsets keyed by name.
const legacyOffsetsGolden = "partition-v1-offsets-by-name.golden"

// TestSnapshotGolden_offsetsWithoutTopicIDsLoad keeps the previous format
// loading: its offsets come back as legacy offsets, saved byte for byte as
// they were, and behave as offsets.go says legacy offsets do.
func TestSnapshotGolden_offsetsWithoutTopicIDsLoad(t *testing.T) {
	path := filepath.Join("testdata", "snapshot", legacyOffsetsGolden)
	old := golden.Read(t, path, "(not regenerated: it is the previous release's format)")
	d := newPartitionDriver(t)
	if err := d.m.RecoverFromSnapshot(bytes.NewReader(old), nil, nil); err != nil {
		t.Fatalf("RecoverFromSnapshot(%s) = %v; snapshots written by older nodes must still load", path, err)
	}
	d.index = 6 // the snapshot's index, so entries apply after it
	if got := save(t, d.m); !bytes.Equal(got, old) {
		t.Fatalf("SaveSnapshot after RecoverFromSnapshot(%s) differs from the file; %s", path, golden.Diff(got, old))
	}
	psm := d.m.(*partitionSM)
	billing := sortedOffsets(psm.offsets["billing"])
	if len(billing) != 3 {
		t.Fatalf("billing's offsets after recovery = %+v, want the file's 3", billing)
	}
	for _, o := range billing {
		if !o.Legacy() {
			t.Errorf("recovered offset %+v has a topic id; the file has none", o)
		}
	}

	// "orders" was deleted and recreated with a new id; billing commits
	// partition 0 of the new one. That replaces the legacy offset of
	// orders-0 and leaves orders-2's, which may be the new topic's.
	newOrders := idFor("orders-2")
	mustDo(t, d, kindCommitOffsets, commitOffsetsCmd{Group: "billing", Offsets: []GroupOffset{
		{Topic: "orders", TopicID: newOrders, Partition: 0, Offset: 3},
	}})
	want := []GroupOffset{
		{Topic: "orders", TopicID: newOrders, Partition: 0, Offset: 3},
		{Topic: "orders", Partition: 2, Offset: 88},
		{Topic: "payments", Partition: 1, Offset: 5, LeaderEpoch: 3},
	}
	if got := sortedOffsets(psm.offsets["billing"]); !reflect.DeepEqual(got, want) {
		t.Errorf("billing after a commit with an id = %+v, want %+v", got, want)
	}
	// The old topic's purge, late: the legacy offsets of the name go, as
	// they may be the deleted topic's; the new id's offset stays.
	mustDo(t, d, kindRemovePartitions, removePartitionsCmd{TopicID: idFor("orders-1"), Topic: "orders"})
	want = []GroupOffset{
		{Topic: "orders", TopicID: newOrders, Partition: 0, Offset: 3},
		{Topic: "payments", Partition: 1, Offset: 5, LeaderEpoch: 3},
	}
	if got := sortedOffsets(psm.offsets["billing"]); !reflect.DeepEqual(got, want) {
		t.Errorf("billing after the purge of the old orders = %+v, want %+v", got, want)
	}
	if got, ok := psm.offsets["audit-readers"]; ok {
		t.Errorf("audit-readers after the purge of the old orders = %+v, want none: its only offset was a legacy one of orders", sortedOffsets(got))
	}
}

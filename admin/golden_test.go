package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/reeve-edge/reeve/api"
	"github.com/reeve-edge/reeve/internal/golden"
	"github.com/reeve-edge/reeve/policy"
	"github.com/reeve-edge/reeve/raft"
)

// The admin API's bodies are a public contract (docs/admin-api.md): the
// CLI, the status page and operators' scripts decode them. These tests pin
// every body's bytes, built from fixed raft and policy values by the very
// functions the handlers call (clusterBody, statusBody, partitionsBody,
// topicDescription and the conversions) and written by writeJSON, so a
// change to an api type's JSON, or to how a body is assembled, fails here
// on its own, apart from the Raft snapshot (raft/snapshot_golden_test.go)
// and the events (events/golden_test.go).

// goldenTopicID is the topic's Kafka UUID, PxyafiEES22OVQLBepDTEQ.
var goldenTopicID = raft.TopicID{0x3f, 0x1c, 0x9a, 0x7e, 0x21, 0x04, 0x4b, 0x6d, 0x8e, 0x55, 0x02, 0xc1, 0x7a, 0x90, 0xd3, 0x11}

// goldenTime is when the first decision was made; the others follow it.
var goldenTime = time.Date(2026, 11, 25, 14, 3, 7, 412_000_000, time.UTC)

const goldenDigest = "sha256:9b1f3c0e5d7a2b4f6e8d0c1a3b5f7e9d2c4a6b8f0e1d3c5a7b9f2e4d6c8a0b1f"

// goldenNodes has each node state: two active nodes with labels, the
// answering node 1 among them, a joining node and a removed one.
func goldenNodes() []raft.Node {
	return []raft.Node{
		{ID: 1, RaftAddress: "10.0.0.1:7100", KafkaAddress: "10.0.0.1:9092", Labels: map[string]string{"power": "mains", "rack": "r1"}, State: raft.NodeActive},
		{ID: 2, RaftAddress: "10.0.0.2:7100", KafkaAddress: "10.0.0.2:9092", Labels: map[string]string{"power": "battery"}, State: raft.NodeActive},
		{ID: 3, RaftAddress: "10.0.0.3:7100", State: raft.NodeJoining},
		{ID: 4, RaftAddress: "10.0.0.4:7100", KafkaAddress: "10.0.0.4:9092", State: raft.NodeRemoved},
	}
}

func goldenTopic() raft.Topic {
	return raft.Topic{Name: "line1.temp", ID: goldenTopicID, Partitions: 3, ReplicationFactor: 3,
		Config:     map[string]string{"retention.ms": "86400000", "unclean.leader.election.enable": "true"},
		Assignment: [][]uint64{{1, 2, 3}, {2, 3, 1}, {3, 1, 2}}}
}

// goldenPartitions are the topic's partitions: 0 healthy, 1 with node 3
// gone from its ISR, 2 offline. Partition p is in Raft group p+2.
func goldenPartitions() []raft.Partition {
	part := func(p int32, replicas []uint64, leader uint64, le int32, isr []uint64, pe int32) raft.Partition {
		return raft.Partition{Topic: "line1.temp", TopicID: goldenTopicID, Partition: p, Replicas: replicas,
			Leader: leader, LeaderEpoch: le, ISR: isr, PartitionEpoch: pe}
	}
	return []raft.Partition{
		part(0, []uint64{1, 2, 3}, 1, 4, []uint64{1, 2, 3}, 6),
		part(1, []uint64{2, 3, 1}, 2, 2, []uint64{2, 1}, 5),
		part(2, []uint64{3, 1, 2}, raft.NoLeader, 7, []uint64{3}, 9),
	}
}

// goldenDecisions are an unclean election by a module, one first-isr made
// in place of a trapped module, one that left a partition offline, and a
// manual one that was not committed.
func goldenDecisions() []policy.DecisionRecord {
	return []policy.DecisionRecord{
		{Time: goldenTime, Topic: "line1.temp", Partition: 1, Reason: policy.ReasonLeaderTimeout, Policy: "prefer-label.wasm",
			PolicyDigest: goldenDigest, From: 3, To: 2, LeaderEpoch: 2, Why: "no ISR replica is alive; node 2 is the first alive replica",
			Input: "1(alive) 2(alive) 3(dead,isr)", LatencyMs: 1.4, Unclean: true, Committed: true},
		{Time: goldenTime.Add(2 * time.Second), Topic: "line1.temp", Partition: 0, Reason: policy.ReasonLeaderTimeout, Policy: "first-isr",
			From: 2, To: 1, LeaderEpoch: 4, Why: "first alive in-sync replica", Input: "1(alive,isr) 2(dead,isr) 3(alive,isr)",
			LatencyMs: 0.25, Committed: true, FallbackFrom: "prefer-label.wasm", FallbackDigest: goldenDigest,
			FallbackCause: policy.CauseTrap, FallbackError: "wasm error: unreachable"},
		{Time: goldenTime.Add(3 * time.Second), Topic: "line1.temp", Partition: 2, Reason: policy.ReasonLeaderTimeout, Policy: "first-isr",
			From: 3, To: raft.NoLeader, LeaderEpoch: 7, Why: "no alive in-sync replica", Input: "1(alive) 2(alive) 3(dead,isr)",
			LatencyMs: 0.5, Committed: true},
		{Time: goldenTime.Add(time.Minute), Topic: "line1.temp", Partition: 0, Reason: policy.ReasonManual, Policy: "operator",
			From: 1, To: 2, LeaderEpoch: 5, Why: "requested by an operator", Input: "1(alive,isr) 2(alive,isr) 3(alive,isr)",
			LatencyMs: 15000, Error: "timed out waiting for the commit"},
	}
}

// goldenNow is when node 1 answers, two minutes after the first decision.
var goldenNow = goldenTime.Add(2 * time.Minute)

// goldenGroupOf puts partition p in Raft group p+2.
func goldenGroupOf(_ raft.TopicID, p int32) uint64 { return uint64(p) + 2 }

// goldenHeartbeats is node 1's heartbeat table at goldenNow: node 2 heard
// 150 ms ago, node 3 (joining) 93 s ago, node 4 (removed) an hour ago. The
// table reads node 1 itself after goldenNow was taken, as a live node
// does; its age is 0 all the same.
func goldenHeartbeats() map[uint64]heartbeat {
	return map[uint64]heartbeat{
		1: {Alive: true, LastSeen: goldenNow.Add(3 * time.Millisecond)},
		2: {Alive: true, LastSeen: goldenNow.Add(-150 * time.Millisecond)},
		3: {LastSeen: goldenNow.Add(-93 * time.Second)},
		4: {LastSeen: goldenNow.Add(-time.Hour)},
	}
}

// goldenTopics is the store's view: line1.temp with its partitions.
func goldenTopics() []topicPartitions {
	return []topicPartitions{{Topic: goldenTopic(), Partitions: goldenPartitions()}}
}

// goldenClusterInput has group 1, the cluster group, and group 4, one this
// node does not run (no leader known, no log, no outbox).
func goldenClusterInput() clusterInput {
	return clusterInput{Cluster: "site1", Self: 1, Version: "1.4.0", Ready: true, PartitionGroups: 3, Nodes: goldenNodes(),
		Groups: []groupInput{
			{ID: raft.ClusterGroup, Leader: 1, Applied: 120, Log: raft.GroupLog{FirstIndex: 101, LastIndex: 120, SnapshotIndex: 100},
				Outbox: &raft.OutboxStatus{Pending: 2, LastSeq: 14, Acked: 12}},
			{ID: 2, Leader: 1, Applied: 57, Partitions: 1, Log: raft.GroupLog{FirstIndex: 1, LastIndex: 57},
				Outbox: &raft.OutboxStatus{Pending: 0, LastSeq: 9, Acked: 9, Dropped: 3}},
			{ID: 3, Leader: 2, Applied: 31, Partitions: 1, Log: raft.GroupLog{FirstIndex: 1, LastIndex: 31},
				Outbox: &raft.OutboxStatus{LastSeq: 4, Acked: 4}},
			{ID: 4, Partitions: 1},
		}}
}

// goldenStatusInput is node 1's view: it leads groups 1 and 2, node 2
// group 3, and group 4's leader is unknown.
func goldenStatusInput() statusInput {
	return statusInput{Cluster: "site1", Self: 1, Version: "1.4.0", Ready: true, Nodes: goldenNodes(), Topics: goldenTopics(),
		GroupLeaders: map[uint64]uint64{raft.ClusterGroup: 1, 2: 1, 3: 2}, Heartbeats: goldenHeartbeats(), Now: goldenNow,
		Decisions: goldenDecisions()}
}

// goldenPartitionList is node 1's answer: node 3 is dead so it was not
// asked for offsets, and the offline partition has no leader to lag behind.
func goldenPartitionList() api.Partitions {
	parts, _ := selectPartitions(goldenTopics(), "") // every topic: no error
	return partitionsBody(partitionsInput{Self: 1, Query: partitionsQuery{Offsets: true}, Partitions: parts,
		GroupOf: goldenGroupOf, Alive: activeAlive(goldenNodes(), goldenHeartbeats()),
		LogEndOffsets: []map[uint64]int64{{1: 1200, 2: 1180}, {2: 900, 1: 904}, {1: 750, 2: 760}}})
}

// goldenPolicies has a module rule whose folder holds a refused file (the
// last good module runs) and the built-in rule for every other topic.
func goldenPolicies() api.Policies {
	return apiPolicies(policy.RulesInfo{PolicyDir: "/etc/reeve/policies", Loaded: 2, Refused: 1, Rules: []policy.RuleStatus{
		{Topics: "line1.*", Policy: "prefer-label.wasm", Settings: map[string]string{"label": "power", "prefer": "mains"},
			Digest: goldenDigest, Running: true, Resets: 1,
			Error: "prefer-label.wasm: self-test: decide answered 2 decisions for 1 partition; the last good module runs"},
		{Topics: "*", Policy: "first-isr", Running: true},
	}}, 3)
}

// goldenCases names each body's file (testdata/golden/<name>.json). A body
// that is an error is written by writeError, the rest by writeJSON with
// status; status 0 marks a request body, which the server decodes. DELETE /v1/topics/{name} and DELETE /v1/nodes/{id} answer with
// apiTopic and apiNode, as topic_created and node_added pin.
var goldenCases = []struct {
	name, endpoint string
	status         int
	body           func() any
}{
	{"cluster", "GET /v1/cluster", http.StatusOK, func() any { return clusterBody(goldenClusterInput()) }},
	{"topics", "GET /v1/topics", http.StatusOK, func() any {
		return []api.Topic{apiTopic(goldenTopic()), apiTopic(raft.Topic{Name: "audit", ID: raft.TopicID{15: 1}, Partitions: 1,
			ReplicationFactor: 1, Assignment: [][]uint64{{2}}})}
	}},
	{"topic", "GET /v1/topics/{name}", http.StatusOK, func() any { return topicDescription(goldenTopics()[0], goldenGroupOf) }},
	{"topic_created", "POST /v1/topics", http.StatusCreated, func() any { return apiTopic(goldenTopic()) }},
	{"nodes", "GET /v1/nodes", http.StatusOK, func() any { return apiNodes(goldenNodes()) }},
	{"node_added", "POST /v1/nodes", http.StatusOK, func() any {
		return apiNode(raft.Node{ID: 5, RaftAddress: "10.0.0.5:7100", State: raft.NodeJoining})
	}},
	{"elect", "POST /v1/topics/{name}/partitions/{p}/elect", http.StatusOK, func() any {
		p := goldenPartitions()[1]
		p.Leader, p.LeaderEpoch, p.PartitionEpoch = 1, 3, 6
		return apiPartition(p)
	}},
	{"elections", "GET /v1/elections", http.StatusOK, func() any { return apiElections(goldenDecisions()) }},
	{"status", "GET /v1/status", http.StatusOK, func() any { return statusBody(goldenStatusInput()) }},
	{"partitions", "GET /v1/partitions", http.StatusOK, func() any { return goldenPartitionList() }},
	{"policies", "GET /v1/policies", http.StatusOK, func() any { return goldenPolicies() }},
	{"error", "any non-2xx answer", http.StatusBadRequest, func() any {
		return fmt.Errorf("%w: partition %q: want a number", errBadRequest, "first")
	}},
	{"request_create_topic", "POST /v1/topics request", 0, func() any {
		return api.CreateTopicRequest{Name: "line1.temp", Partitions: 3, ReplicationFactor: 3, Config: map[string]string{"retention.ms": "86400000"}}
	}},
	{"request_add_node", "POST /v1/nodes request", 0, func() any { return api.AddNodeRequest{ID: 5, RaftAddress: "10.0.0.5:7100"} }},
	{"request_elect", "POST .../elect request", 0, func() any { return api.ElectRequest{To: 2} }},
}

// encode writes body as the server does; it returns the bytes and the type
// a client decodes them into.
func encode(t *testing.T, status int, body any) ([]byte, reflect.Type) {
	t.Helper()
	rec := httptest.NewRecorder()
	typ := reflect.TypeOf(body)
	if err, ok := body.(error); ok {
		writeError(rec, err)
		typ = reflect.TypeFor[api.Error]()
	} else {
		writeJSON(rec, max(status, http.StatusOK), body)
	}
	if status != 0 && rec.Code != status {
		t.Errorf("status = %d, want %d", rec.Code, status)
	}
	return rec.Body.Bytes(), typ
}

const (
	regenerate = "go test ./admin -run TestGolden -update"
	contract   = "The admin API's JSON is a public contract, documented in docs/admin-api.md: update the document too."
)

func TestGolden(t *testing.T) {
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join("testdata", "golden", c.name+".json")
			got, typ := encode(t, c.status, c.body())
			// Every key must decode back into the type a client uses, and
			// the value encode as the same bytes: a field written but not
			// read would otherwise pass unseen.
			v := reflect.New(typ)
			dec := json.NewDecoder(bytes.NewReader(got))
			dec.DisallowUnknownFields()
			if err := dec.Decode(v.Interface()); err != nil {
				t.Fatalf("%s: decoding the body into %v = %v", c.endpoint, typ, err)
			}
			if again, _ := encode(t, 0, v.Elem().Interface()); !bytes.Equal(again, got) {
				t.Errorf("%s: the body decoded into %v and encoded again differs; %s", c.endpoint, typ, golden.Diff(again, got))
			}
			golden.Check(t, path, got, regenerate, c.endpoint+": "+contract)
		})
	}
}

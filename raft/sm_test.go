package raft

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/reeve-edge/reeve/internal/datadriven"

	sm "github.com/lni/dragonboat/v4/statemachine"
)

// The tests in this file drive the state machines directly, as Dragonboat
// would: one Update per committed entry, at rising indexes, with commands
// built by encode. They need no NodeHost and no network.

// driver applies entries to one state machine at consecutive log indexes and
// decodes what each returns. Its subscription sees what the machine publishes.
type driver struct {
	t     testing.TB
	m     sm.IStateMachine
	sub   *Subscription
	index uint64
}

func newClusterDriver(t testing.TB) *driver {
	f := newFeed()
	return &driver{t: t, m: newClusterSM(f), sub: f.subscribe()}
}

// testPartitionGroup is the group id the partition state machines of these
// tests run as; the machine does not check GroupFor, so any id works.
const testPartitionGroup uint64 = 2

func newPartitionDriver(t testing.TB) *driver {
	f := newFeed()
	return &driver{t: t, m: newPartitionSM(testPartitionGroup, f), sub: f.subscribe()}
}

// command encodes a command as a proposer does.
func command(t testing.TB, k kind, body any) []byte {
	t.Helper()
	b, err := encode(k, body)
	if err != nil {
		t.Fatalf("encode(%d, %+v) = %v", k, body, err)
	}
	return b
}

// applyRaw applies cmd at the next index and returns what Update returned.
func (d *driver) applyRaw(cmd []byte) sm.Result {
	d.t.Helper()
	d.index++
	res, err := d.m.Update(sm.Entry{Index: d.index, Cmd: cmd})
	if err != nil {
		d.t.Fatalf("Update(index %d, %q) = %v", d.index, cmd, err)
	}
	if res.Value != d.index {
		d.t.Errorf("Update(index %d).Value = %d, want %d", d.index, res.Value, d.index)
	}
	return res
}

// apply applies cmd at the next index and decodes its result.
func (d *driver) apply(cmd []byte) result {
	d.t.Helper()
	res := d.applyRaw(cmd)
	var r result
	if err := json.Unmarshal(res.Data, &r); err != nil {
		d.t.Fatalf("Update(index %d).Data = %q: %v", d.index, res.Data, err)
	}
	return r
}

// do encodes and applies one command.
func (d *driver) do(k kind, body any) result {
	d.t.Helper()
	return d.apply(command(d.t, k, body))
}

// snapshot returns the machine's snapshot without its applied index, so two
// snapshots compare equal exactly when the states do.
func (d *driver) snapshot() []byte {
	d.t.Helper()
	switch m := d.m.(type) {
	case *clusterSM:
		defer func(i uint64) { m.index = i }(m.index)
		m.index = 0
	case *partitionSM:
		defer func(i uint64) { m.index = i }(m.index)
		m.index = 0
	}
	var b bytes.Buffer
	if err := d.m.SaveSnapshot(&b, nil, nil); err != nil {
		d.t.Fatalf("SaveSnapshot() = %v", err)
	}
	return b.Bytes()
}

// changes returns what the machine has published since the last call,
// without waiting.
func (d *driver) changes() []Change { return pending(d.sub) }

func (d *driver) clusterView() clusterView {
	d.t.Helper()
	v, err := d.m.(*clusterSM).Lookup(nil)
	if err != nil {
		d.t.Fatalf("Lookup() = %v", err)
	}
	return v.(clusterView)
}

func (d *driver) partitions() []Partition {
	d.t.Helper()
	v, err := d.m.(*partitionSM).Lookup(nil)
	if err != nil {
		d.t.Fatalf("Lookup() = %v", err)
	}
	return v.([]Partition)
}

// idFor returns a topic id derived from s, so tests can name ids.
func idFor(s string) TopicID {
	var id TopicID
	copy(id[:], s)
	return id
}

func nodeAddr(id uint64) string { return fmt.Sprintf("10.0.0.%d:9093", id) }

func registration(id uint64) registerNodeCmd {
	return registerNodeCmd{Node: Node{
		ID:           id,
		RaftAddress:  nodeAddr(id),
		KafkaAddress: fmt.Sprintf("10.0.0.%d:9092", id),
		Labels:       map[string]string{"rack": fmt.Sprintf("r%d", id)},
	}}
}

// bootedCluster returns a cluster state machine bootstrapped with four
// partition groups and the given nodes registered, with the feed drained.
func bootedCluster(t testing.TB, nodes ...uint64) *driver {
	t.Helper()
	d := newClusterDriver(t)
	if r := d.do(kindBootstrap, bootstrapCmd{Name: "site-a", PartitionGroups: 4}); r.Code != "" {
		t.Fatalf("bootstrap = %s: %s, want success", r.Code, r.Message)
	}
	for _, id := range nodes {
		if r := d.do(kindRegisterNode, registration(id)); r.Code != "" {
			t.Fatalf("register node %d = %s: %s, want success", id, r.Code, r.Message)
		}
	}
	d.changes()
	return d
}

// checkCode reports whether r has code want, reporting a mismatch as call's.
func checkCode(t testing.TB, call string, r result, want string) bool {
	t.Helper()
	if r.Code != want {
		t.Errorf("%s = code %q (%s), want %q", call, r.Code, r.Message, want)
		return false
	}
	return true
}

// step is one command of a scripted sequence and the code it must return.
type step struct {
	name string
	cmd  []byte
	code string
}

// checkDeterministic applies script to two fresh machines from newDriver,
// and, from the middle of the script on, to a third one restored from the
// first one's snapshot. All three must return the same bytes for every
// command and write the same snapshot bytes after it.
func checkDeterministic(t *testing.T, newDriver func(testing.TB) *driver, script []step) {
	a, b := newDriver(t), newDriver(t)
	var c *driver
	for i, s := range script {
		if i == len(script)/2 {
			snap := a.snapshot()
			c = newDriver(t)
			if err := c.m.RecoverFromSnapshot(bytes.NewReader(snap), nil, nil); err != nil {
				t.Fatalf("RecoverFromSnapshot() = %v", err)
			}
			c.index = a.index
			if got := c.snapshot(); !bytes.Equal(got, snap) {
				t.Fatalf("SaveSnapshot() after RecoverFromSnapshot = %s, want %s", got, snap)
			}
		}
		ra := a.applyRaw(s.cmd)
		var r result
		if err := json.Unmarshal(ra.Data, &r); err != nil {
			t.Fatalf("%s: result %q: %v", s.name, ra.Data, err)
		}
		checkCode(t, s.name, r, s.code)
		others := []*driver{b}
		if c != nil {
			others = append(others, c)
		}
		snap := a.snapshot()
		for _, o := range others {
			if got := o.applyRaw(s.cmd); !reflect.DeepEqual(got, ra) {
				t.Errorf("%s: Update() = %+v (%s), want %+v (%s)", s.name, got, got.Data, ra, ra.Data)
			}
			if got := o.snapshot(); !bytes.Equal(got, snap) {
				t.Errorf("%s: SaveSnapshot() = %s, want %s", s.name, got, snap)
			}
		}
	}
}

func TestClusterSM_isDeterministic(t *testing.T) {
	create := func(name string, id string, partitions int32, rf int16, candidates ...uint64) []byte {
		return command(t, kindCreateTopic, createTopicCmd{
			Name: name, ID: idFor(id), Partitions: partitions, ReplicationFactor: rf,
			Config:     map[string]string{"retention.ms": "3600000", "cleanup.policy": "delete", "segment.bytes": "1048576"},
			Candidates: candidates,
		})
	}
	script := []step{
		{"bootstrap", command(t, kindBootstrap, bootstrapCmd{Name: "site-a", PartitionGroups: 4}), ""},
		{"register node 3", command(t, kindRegisterNode, registration(3)), ""},
		{"register node 1", command(t, kindRegisterNode, registration(1)), ""},
		{"register node 2", command(t, kindRegisterNode, registration(2)), ""},
		{"add node 4", command(t, kindAddNode, addNodeCmd{ID: 4, RaftAddress: nodeAddr(4)}), ""},
		{"register node 4", command(t, kindRegisterNode, registration(4)), ""},
		{"create orders", create("orders", "orders-1", 6, 3, 4, 3, 2, 1), ""},
		{"create payments", create("payments", "payments-1", 3, 2, 1, 2, 3), ""},
		{"create orders again", create("orders", "orders-2", 1, 1, 1), "topic_exists"},
		{"retry orders", create("orders", "orders-1", 6, 3, 1, 2, 3, 4), ""},
		{"grow orders", command(t, kindAddPartitions, addPartitionsCmd{Name: "orders", ID: idFor("orders-1"), Count: 9, Candidates: []uint64{1, 2, 3, 4}}), ""},
		{"delete payments", command(t, kindDeleteTopic, deleteTopicCmd{Name: "payments"}), ""},
		{"recreate payments", create("payments", "payments-2", 1, 1, 2), ""},
		{"create audit", create("audit", "audit-1", 2, 4, 1, 2, 3, 4), ""},
		{"forget old payments", command(t, kindForgetTopic, forgetTopicCmd{ID: idFor("payments-1")}), ""},
		{"remove node 4", command(t, kindRemoveNode, removeNodeCmd{ID: 4}), ""},
		{"register node 4", command(t, kindRegisterNode, registration(4)), "node_removed"},
		{"add node 5", command(t, kindAddNode, addNodeCmd{ID: 5, RaftAddress: nodeAddr(4)}), ""},
		{"create events", create("events", "events-1", 12, 3, 5, 4, 3, 2, 1), ""},
		{"create big", create("big", "big-1", 2, 4, 1, 2, 3, 4, 5), "replication_factor"},
		{"delete orders", command(t, kindDeleteTopic, deleteTopicCmd{Name: "orders"}), ""},
		{"unknown kind", []byte{commandVersion, 99, '{', '}'}, "unsupported_command"},
		{"bad json", []byte{commandVersion, byte(kindCreateTopic), '{'}, "unsupported_command"},
		{"other bootstrap", command(t, kindBootstrap, bootstrapCmd{Name: "site-b", PartitionGroups: 4}), "bootstrap_mismatch"},
		{"create after all", create("late", "late-1", 4, 2, 1, 2, 3), ""},
	}
	checkDeterministic(t, newClusterDriver, script)
}

func TestPartitionSM_isDeterministic(t *testing.T) {
	initCmd := func(topic string, n int32) []byte {
		var parts []Partition
		for p := range n {
			r := []uint64{uint64(p%3 + 1), uint64((p+1)%3 + 1), uint64((p+2)%3 + 1)}
			parts = append(parts, Partition{Topic: topic, TopicID: idFor(topic), Partition: p, Replicas: r, Leader: r[0], ISR: r})
		}
		return command(t, kindInitPartitions, initPartitionsCmd{Partitions: parts})
	}
	leader := func(id uint64) *uint64 { return &id }
	update := func(u ...PartitionUpdate) []byte {
		return command(t, kindUpdatePartitions, updatePartitionsCmd{Updates: u})
	}
	orders, payments := idFor("orders"), idFor("payments")
	script := []step{
		{"init orders", initCmd("orders", 6), ""},
		{"init payments", initCmd("payments", 3), ""},
		{"update batch", update(
			PartitionUpdate{TopicID: orders, Partition: 0, Leader: leader(2)},
			PartitionUpdate{TopicID: orders, Partition: 1, ISR: []uint64{2, 3}},
			PartitionUpdate{TopicID: payments, Partition: 0, ExpectedLeaderEpoch: 7},
			PartitionUpdate{TopicID: orders, Partition: 2, Leader: leader(9)},
		), ""},
		{"unclean", update(PartitionUpdate{TopicID: orders, Partition: 1, ExpectedPartitionEpoch: 1, Leader: leader(1), Unclean: true}), ""},
		{"init orders again", initCmd("orders", 8), ""},
		{"remove payments", command(t, kindRemovePartitions, removePartitionsCmd{TopicID: payments}), ""},
		{"offline", update(PartitionUpdate{TopicID: orders, Partition: 3, Leader: leader(NoLeader)}), ""},
		{"init events", initCmd("events", 4), ""},
		{"unknown kind", []byte{commandVersion, 99}, "unsupported_command"},
		{"bad json", []byte{commandVersion, byte(kindUpdatePartitions), '['}, "unsupported_command"},
		{"update removed", update(PartitionUpdate{TopicID: payments, Partition: 1, Leader: leader(3)}), ""},
		{"update after all", update(PartitionUpdate{TopicID: orders, Partition: 0, ExpectedLeaderEpoch: 1, ExpectedPartitionEpoch: 1, ISR: []uint64{2}}), ""},
	}
	checkDeterministic(t, newPartitionDriver, script)
}

// withByte returns a copy of b with b[i] set to v.
func withByte(b []byte, i int, v byte) []byte {
	c := slices.Clone(b)
	c[i] = v
	return c
}

func TestClusterSM_rejectsMalformedCommands(t *testing.T) {
	valid := command(t, kindCreateTopic, createTopicCmd{Name: "x", ID: idFor("x"), Partitions: 1, ReplicationFactor: 1, Candidates: []uint64{1}})
	tests := []struct {
		name string
		cmd  []byte
	}{
		{"empty entry", nil},
		{"version byte only", []byte{commandVersion}},
		{"format version 0", withByte(valid, 0, 0)},
		{"format version 2", withByte(valid, 0, 2)},
		{"format version 255", withByte(valid, 0, 255)},
		{"kind 0", withByte(valid, 1, 0)},
		{"unknown kind", withByte(valid, 1, 99)},
		{"partition-group kind", command(t, kindInitPartitions, initPartitionsCmd{})},
		{"no body", []byte{commandVersion, byte(kindCreateTopic)}},
		{"bootstrap truncated json", []byte("\x01\x01{")},
		{"register node truncated json", []byte("\x01\x02{\"node\":")},
		{"add node wrong type", []byte("\x01\x03{\"id\":\"four\"}")},
		{"remove node not an object", []byte("\x01\x04[1]")},
		{"create topic truncated json", valid[:len(valid)-1]},
		{"create topic id not base64", []byte("\x01\x05{\"name\":\"x\",\"id\":\"!!\",\"partitions\":1,\"replication_factor\":1,\"candidates\":[1]}")},
		{"add partitions wrong type", []byte("\x01\x08{\"count\":\"9\"}")},
		{"delete topic wrong type", []byte("\x01\x06{\"name\":7}")},
		{"forget topic bad id", []byte("\x01\x07{\"id\":\"short\"}")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := bootedCluster(t, 1)
			before := d.snapshot()
			r := d.apply(tt.cmd)
			checkCode(t, fmt.Sprintf("Update(%q)", tt.cmd), r, "unsupported_command")
			if got := d.snapshot(); !bytes.Equal(got, before) {
				t.Errorf("Update(%q) changed the state to %s, want %s", tt.cmd, got, before)
			}
			if c := d.changes(); c != nil {
				t.Errorf("Update(%q) published %+v, want nothing", tt.cmd, c)
			}
		})
	}
}

func TestPartitionSM_rejectsMalformedCommands(t *testing.T) {
	valid := command(t, kindInitPartitions, initPartitionsCmd{Partitions: []Partition{
		{Topic: "x", TopicID: idFor("x"), Replicas: []uint64{1}, Leader: 1, ISR: []uint64{1}},
	}})
	tests := []struct {
		name string
		cmd  []byte
	}{
		{"empty entry", []byte{}},
		{"version byte only", []byte{commandVersion}},
		{"format version 0", withByte(valid, 0, 0)},
		{"format version 2", withByte(valid, 0, 2)},
		{"unknown kind", withByte(valid, 1, 99)},
		{"cluster-group kind", command(t, kindBootstrap, bootstrapCmd{Name: "a", PartitionGroups: 1})},
		{"init truncated json", valid[:len(valid)-2]},
		{"update wrong type", []byte("\x01\x15{\"updates\":{}}")},
		{"remove bad id", []byte("\x01\x16{\"topic_id\":\"?\"}")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newPartitionDriver(t)
			d.do(kindInitPartitions, initPartitionsCmd{Partitions: []Partition{
				{Topic: "y", TopicID: idFor("y"), Replicas: []uint64{1, 2}, Leader: 1, ISR: []uint64{1, 2}},
			}})
			d.changes()
			before := d.snapshot()
			r := d.apply(tt.cmd)
			checkCode(t, fmt.Sprintf("Update(%q)", tt.cmd), r, "unsupported_command")
			if got := d.snapshot(); !bytes.Equal(got, before) {
				t.Errorf("Update(%q) changed the state to %s, want %s", tt.cmd, got, before)
			}
			if c := d.changes(); c != nil {
				t.Errorf("Update(%q) published %+v, want nothing", tt.cmd, c)
			}
		})
	}
}

func TestClusterSM_refusesCommandsBeforeBootstrap(t *testing.T) {
	tests := []struct {
		name string
		kind kind
		body any
	}{
		{"register node", kindRegisterNode, registration(1)},
		{"add node", kindAddNode, addNodeCmd{ID: 2, RaftAddress: nodeAddr(2)}},
		{"remove node", kindRemoveNode, removeNodeCmd{ID: 1}},
		{"create topic", kindCreateTopic, createTopicCmd{Name: "x", ID: idFor("x"), Partitions: 1, ReplicationFactor: 1, Candidates: []uint64{1}}},
		{"delete topic", kindDeleteTopic, deleteTopicCmd{Name: "x"}},
		{"forget topic", kindForgetTopic, forgetTopicCmd{ID: idFor("x")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newClusterDriver(t)
			before := d.snapshot()
			r := d.do(tt.kind, tt.body)
			checkCode(t, fmt.Sprintf("%s before bootstrap", tt.name), r, "not_bootstrapped")
			if got := d.snapshot(); !bytes.Equal(got, before) {
				t.Errorf("%s before bootstrap changed the state to %s, want %s", tt.name, got, before)
			}
		})
	}
}

func TestClusterSM_bootstrap(t *testing.T) {
	d := newClusterDriver(t)
	// The steps run in order on one machine.
	steps := []struct {
		name    string
		cmd     bootstrapCmd
		code    string
		changed bool
	}{
		{"zero partition groups is refused", bootstrapCmd{Name: "site-a", PartitionGroups: 0}, "bootstrap_mismatch", false},
		{"first bootstrap", bootstrapCmd{Name: "site-a", PartitionGroups: 4}, "", true},
		{"same settings again is a no-op", bootstrapCmd{Name: "site-a", PartitionGroups: 4}, "", false},
		{"other name", bootstrapCmd{Name: "site-b", PartitionGroups: 4}, "bootstrap_mismatch", false},
		{"other partition group count", bootstrapCmd{Name: "site-a", PartitionGroups: 8}, "bootstrap_mismatch", false},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			before := d.snapshot()
			r := d.do(kindBootstrap, s.cmd)
			checkCode(t, fmt.Sprintf("bootstrap(%+v)", s.cmd), r, s.code)
			if changed := !bytes.Equal(d.snapshot(), before); changed != s.changed {
				t.Errorf("bootstrap(%+v) changed the state: %t, want %t", s.cmd, changed, s.changed)
			}
			var want []Change
			if s.changed {
				want = []Change{{Group: ClusterGroup, Index: d.index, Kind: ChangeReset}}
			}
			if got := d.changes(); !reflect.DeepEqual(got, want) {
				t.Errorf("bootstrap(%+v) published %+v, want %+v", s.cmd, got, want)
			}
		})
	}
	if v := d.clusterView(); !v.Bootstrapped || v.Name != "site-a" || v.PartitionGroups != 4 {
		t.Errorf("view after bootstrap = %+v, want cluster site-a with 4 partition groups", v)
	}
}

func TestClusterSM_createTopic_validatesName(t *testing.T) {
	tests := []struct {
		name  string
		topic string
		code  string
	}{
		{"empty", "", "invalid_topic"},
		{"dot", ".", "invalid_topic"},
		{"dot dot", "..", "invalid_topic"},
		{"201 characters", strings.Repeat("a", 201), "invalid_topic"},
		{"slash", "a/b", "invalid_topic"},
		{"space", "a b", "invalid_topic"},
		{"non-ASCII letter", "café", "invalid_topic"},
		{"colon", "a:b", "invalid_topic"},
		{"200 characters", strings.Repeat("a", 200), ""},
		{"every allowed kind of character", "a.b_c-D9", ""},
		{"three dots", "...", ""},
		{"one letter", "x", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := bootedCluster(t, 1)
			before := d.snapshot()
			r := d.do(kindCreateTopic, createTopicCmd{Name: tt.topic, ID: idFor("id"), Partitions: 1, ReplicationFactor: 1, Candidates: []uint64{1}})
			if !checkCode(t, fmt.Sprintf("createTopic(%q)", tt.topic), r, tt.code) {
				return
			}
			if tt.code != "" {
				if got := d.snapshot(); !bytes.Equal(got, before) {
					t.Errorf("createTopic(%q) changed the state to %s, want %s", tt.topic, got, before)
				}
				return
			}
			if r.Topic == nil || r.Topic.Name != tt.topic {
				t.Errorf("createTopic(%q).Topic = %+v, want topic %q", tt.topic, r.Topic, tt.topic)
			}
		})
	}
}

func TestClusterSM_createTopic_checksSpec(t *testing.T) {
	// Nodes 1, 2 and 3 are active, 4 is joining (added, not registered),
	// 5 is removed and 9 is unknown.
	setup := func(t *testing.T) *driver {
		d := bootedCluster(t, 1, 2, 3, 5)
		for _, c := range []result{
			d.do(kindAddNode, addNodeCmd{ID: 4, RaftAddress: nodeAddr(4)}),
			d.do(kindRemoveNode, removeNodeCmd{ID: 5}),
		} {
			if c.Code != "" {
				t.Fatalf("setup = %s: %s, want success", c.Code, c.Message)
			}
		}
		d.changes()
		return d
	}
	tests := []struct {
		name       string
		id         TopicID
		partitions int32
		rf         int16
		candidates []uint64
		code       string
		nodes      []uint64 // the nodes the assignment uses, on success
	}{
		{"zero partitions", idFor("t"), 0, 1, []uint64{1, 2, 3}, "invalid_topic", nil},
		{"negative partitions", idFor("t"), -1, 1, []uint64{1, 2, 3}, "invalid_topic", nil},
		{"partitions above MaxPartitions", idFor("t"), MaxPartitions + 1, 1, []uint64{1, 2, 3}, "invalid_topic", nil},
		{"zero replication factor", idFor("t"), 3, 0, []uint64{1, 2, 3}, "invalid_topic", nil},
		{"negative replication factor", idFor("t"), 3, -1, []uint64{1, 2, 3}, "invalid_topic", nil},
		{"zero topic id", TopicID{}, 3, 1, []uint64{1, 2, 3}, "invalid_topic", nil},
		{"replication factor above candidate count", idFor("t"), 3, 3, []uint64{1, 2}, "replication_factor", nil},
		{"replication factor above node count", idFor("t"), 3, 4, []uint64{1, 2, 3}, "replication_factor", nil},
		{"no candidates", idFor("t"), 3, 1, nil, "replication_factor", nil},
		{"unknown candidate is ignored", idFor("t"), 3, 3, []uint64{1, 2, 9}, "replication_factor", nil},
		{"joining candidate is ignored", idFor("t"), 3, 3, []uint64{1, 2, 4}, "replication_factor", nil},
		{"removed candidate is ignored", idFor("t"), 3, 3, []uint64{1, 2, 5}, "replication_factor", nil},
		{"repeated candidate counts once", idFor("t"), 3, 2, []uint64{1, 1, 1}, "replication_factor", nil},
		{"replication factor equal to live candidates", idFor("t"), 3, 3, []uint64{3, 2, 1}, "", []uint64{1, 2, 3}},
		{"only live candidates are assigned", idFor("t"), 4, 2, []uint64{9, 5, 4, 2, 1, 2}, "", []uint64{1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := setup(t)
			before := d.snapshot()
			cmd := createTopicCmd{Name: "t", ID: tt.id, Partitions: tt.partitions, ReplicationFactor: tt.rf, Candidates: tt.candidates}
			r := d.do(kindCreateTopic, cmd)
			if !checkCode(t, fmt.Sprintf("createTopic(%+v)", cmd), r, tt.code) {
				return
			}
			if tt.code != "" {
				if got := d.snapshot(); !bytes.Equal(got, before) {
					t.Errorf("createTopic(%+v) changed the state to %s, want %s", cmd, got, before)
				}
				return
			}
			var used []uint64
			for _, replicas := range r.Topic.Assignment {
				used = append(used, replicas...)
			}
			slices.Sort(used)
			if used = slices.Compact(used); !slices.Equal(used, tt.nodes) {
				t.Errorf("createTopic(%+v) assigned nodes %v, want %v", cmd, used, tt.nodes)
			}
		})
	}
}

func TestClusterSM_createTopic_existingName(t *testing.T) {
	d := bootedCluster(t, 1, 2, 3)
	first := d.do(kindCreateTopic, createTopicCmd{Name: "orders", ID: idFor("orders-1"), Partitions: 6, ReplicationFactor: 3, Candidates: []uint64{1, 2, 3}})
	if first.Code != "" || first.Topic == nil {
		t.Fatalf("createTopic(orders) = %+v, want a topic", first)
	}
	d.changes()
	tests := []struct {
		name string
		cmd  createTopicCmd
		code string
	}{
		{"other id", createTopicCmd{Name: "orders", ID: idFor("orders-2"), Partitions: 6, ReplicationFactor: 3, Candidates: []uint64{1, 2, 3}}, "topic_exists"},
		{"same id: a retried proposal", createTopicCmd{Name: "orders", ID: idFor("orders-1"), Partitions: 6, ReplicationFactor: 3, Candidates: []uint64{1, 2, 3}}, ""},
		{"same id, other spec: still the retry", createTopicCmd{Name: "orders", ID: idFor("orders-1"), Partitions: 1, ReplicationFactor: 1, Candidates: []uint64{2}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := d.snapshot()
			r := d.do(kindCreateTopic, tt.cmd)
			checkCode(t, fmt.Sprintf("createTopic(%+v)", tt.cmd), r, tt.code)
			if tt.code == "" && !reflect.DeepEqual(r.Topic, first.Topic) {
				t.Errorf("createTopic(%+v).Topic = %+v, want the existing %+v", tt.cmd, r.Topic, first.Topic)
			}
			if got := d.snapshot(); !bytes.Equal(got, before) {
				t.Errorf("createTopic(%+v) changed the state to %s, want %s", tt.cmd, got, before)
			}
			if c := d.changes(); c != nil {
				t.Errorf("createTopic(%+v) published %+v, want nothing", tt.cmd, c)
			}
		})
	}
}

func TestClusterSM_createTopic_assignsRoundRobin(t *testing.T) {
	d := bootedCluster(t, 1, 2, 3)
	r := d.do(kindCreateTopic, createTopicCmd{Name: "a", ID: idFor("a"), Partitions: 6, ReplicationFactor: 3, Candidates: []uint64{3, 1, 2}})
	if r.Code != "" {
		t.Fatalf("createTopic(a) = %s: %s, want success", r.Code, r.Message)
	}
	want := [][]uint64{{1, 2, 3}, {2, 3, 1}, {3, 1, 2}, {1, 2, 3}, {2, 3, 1}, {3, 1, 2}}
	if !reflect.DeepEqual(r.Topic.Assignment, want) {
		t.Errorf("createTopic(a).Assignment = %v, want %v", r.Topic.Assignment, want)
	}
	first := make(map[uint64]int)
	for p, replicas := range r.Topic.Assignment {
		first[replicas[0]]++
		if s := slices.Compact(slices.Sorted(slices.Values(replicas))); len(s) != 3 {
			t.Errorf("createTopic(a).Assignment[%d] = %v, want 3 distinct nodes", p, replicas)
		}
	}
	for _, id := range []uint64{1, 2, 3} {
		if first[id] != 2 {
			t.Errorf("createTopic(a): node %d is first replica of %d partitions, want 2", id, first[id])
		}
	}

	// Each new topic starts one node further on; a refused topic does not
	// move the rotation.
	steps := []struct {
		name  string
		topic string
		rf    int16
		code  string
		first []uint64 // first replica of each partition
	}{
		{"second topic starts on node 2", "b", 2, "", []uint64{2, 3, 1}},
		{"third topic starts on node 3", "c", 1, "", []uint64{3, 1, 2}},
		{"refused topic", "d", 4, "replication_factor", nil},
		{"fourth topic wraps to node 1", "e", 3, "", []uint64{1, 2, 3}},
		{"fifth topic starts on node 2", "f", 3, "", []uint64{2, 3, 1}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			r := d.do(kindCreateTopic, createTopicCmd{Name: s.topic, ID: idFor(s.topic), Partitions: 3, ReplicationFactor: s.rf, Candidates: []uint64{1, 2, 3}})
			if !checkCode(t, fmt.Sprintf("createTopic(%s)", s.topic), r, s.code) || s.code != "" {
				return
			}
			var got []uint64
			for _, replicas := range r.Topic.Assignment {
				got = append(got, replicas[0])
			}
			if !slices.Equal(got, s.first) {
				t.Errorf("createTopic(%s) first replicas = %v, want %v (assignment %v)", s.topic, got, s.first, r.Topic.Assignment)
			}
		})
	}
}

func TestClusterSM_deleteTopic(t *testing.T) {
	d := bootedCluster(t, 1)
	create := func(id string) result {
		return d.do(kindCreateTopic, createTopicCmd{Name: "t", ID: idFor(id), Partitions: 1, ReplicationFactor: 1, Candidates: []uint64{1}})
	}
	if r := create("t-1"); r.Code != "" {
		t.Fatalf("createTopic(t) = %s: %s, want success", r.Code, r.Message)
	}
	d.changes()
	r := d.do(kindDeleteTopic, deleteTopicCmd{Name: "t"})
	if r.Code != "" || r.Topic == nil || r.Topic.ID != idFor("t-1") {
		t.Fatalf("deleteTopic(t) = %+v, want the deleted topic", r)
	}
	want := []Change{{Group: ClusterGroup, Index: d.index, Kind: ChangeTopicDeleted, Topic: "t", TopicID: idFor("t-1")}}
	if got := d.changes(); !reflect.DeepEqual(got, want) {
		t.Errorf("deleteTopic(t) published %+v, want %+v", got, want)
	}
	if v := d.clusterView(); len(v.Topics) != 0 || len(v.Tombstones) != 1 || v.Tombstones[0].ID != idFor("t-1") {
		t.Errorf("view after deleteTopic(t) = topics %+v, tombstones %+v; want no topic and the tombstone of t", v.Topics, v.Tombstones)
	}
	checkCode(t, "deleteTopic(t) again", d.do(kindDeleteTopic, deleteTopicCmd{Name: "t"}), "unknown_topic")
	checkCode(t, "createTopic(t) with a new id after delete", create("t-2"), "")
	checkCode(t, "forgetTopic(t-1)", d.do(kindForgetTopic, forgetTopicCmd{ID: idFor("t-1")}), "")
	if v := d.clusterView(); len(v.Topics) != 1 || len(v.Tombstones) != 0 {
		t.Errorf("view after forgetTopic(t-1) = topics %+v, tombstones %+v; want topic t and no tombstone", v.Topics, v.Tombstones)
	}
	checkCode(t, "forgetTopic(t-1) again", d.do(kindForgetTopic, forgetTopicCmd{ID: idFor("t-1")}), "")
}

func TestClusterSM_addPartitions(t *testing.T) {
	// Node 4 is active, but the topics are created while only 1, 2 and 3
	// are candidates.
	d := bootedCluster(t, 1, 2, 3, 4)
	for _, c := range []createTopicCmd{
		{Name: "a", ID: idFor("a"), Partitions: 3, ReplicationFactor: 2, Candidates: []uint64{1, 2, 3}}, // starts on node 1
		{Name: "b", ID: idFor("b"), Partitions: 1, ReplicationFactor: 1, Candidates: []uint64{1, 2, 3}}, // starts on node 2
	} {
		if r := d.do(kindCreateTopic, c); r.Code != "" {
			t.Fatalf("createTopic(%s) = %s: %s, want success", c.Name, r.Code, r.Message)
		}
	}
	d.changes()
	live := []uint64{3, 1, 2}
	// The steps run in order on one machine.
	steps := []struct {
		name       string
		cmd        addPartitionsCmd
		code       string
		assignment [][]uint64 // the topic's whole assignment afterwards, on success
		changed    bool
	}{
		{"unknown topic", addPartitionsCmd{Name: "nope", ID: idFor("nope"), Count: 3, Candidates: live}, "unknown_topic", nil, false},
		{"topic id of another incarnation", addPartitionsCmd{Name: "a", ID: idFor("old a"), Count: 3, Candidates: live}, "unknown_topic", nil, false},
		{"fewer partitions", addPartitionsCmd{Name: "a", ID: idFor("a"), Count: 1, Candidates: live}, "invalid_topic", nil, false},
		{"above MaxPartitions", addPartitionsCmd{Name: "a", ID: idFor("a"), Count: MaxPartitions + 1, Candidates: live}, "invalid_topic", nil, false},
		{"replication factor above live candidates", addPartitionsCmd{Name: "a", ID: idFor("a"), Count: 4, Candidates: []uint64{1, 9}}, "replication_factor", nil, false},
		{"grow continues the topic's rotation", addPartitionsCmd{Name: "a", ID: idFor("a"), Count: 5, Candidates: live}, "",
			[][]uint64{{1, 2}, {2, 3}, {3, 1}, {1, 2}, {2, 3}}, true},
		{"same count: a retried proposal", addPartitionsCmd{Name: "a", ID: idFor("a"), Count: 5, Candidates: []uint64{1}}, "",
			[][]uint64{{1, 2}, {2, 3}, {3, 1}, {1, 2}, {2, 3}}, false},
		{"with a new node, existing partitions stay put", addPartitionsCmd{Name: "a", ID: idFor("a"), Count: 7, Candidates: []uint64{4, 3, 2, 1}}, "",
			[][]uint64{{1, 2}, {2, 3}, {3, 1}, {1, 2}, {2, 3}, {2, 3}, {3, 4}}, true},
		{"grow a topic that starts on node 2", addPartitionsCmd{Name: "b", ID: idFor("b"), Count: 3, Candidates: live}, "",
			[][]uint64{{2}, {3}, {1}}, true},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			before := d.snapshot()
			r := d.do(kindAddPartitions, s.cmd)
			checkCode(t, fmt.Sprintf("addPartitions(%+v)", s.cmd), r, s.code)
			if changed := !bytes.Equal(d.snapshot(), before); changed != s.changed {
				t.Errorf("addPartitions(%+v) changed the state: %t, want %t", s.cmd, changed, s.changed)
			}
			var want []Change
			if s.changed {
				want = []Change{{Group: ClusterGroup, Index: d.index, Kind: ChangeTopicCreated, Topic: s.cmd.Name, TopicID: s.cmd.ID}}
			}
			if got := d.changes(); !reflect.DeepEqual(got, want) {
				t.Errorf("addPartitions(%+v) published %+v, want %+v", s.cmd, got, want)
			}
			if s.code != "" {
				return
			}
			if r.Topic == nil || r.Topic.Partitions != s.cmd.Count || !reflect.DeepEqual(r.Topic.Assignment, s.assignment) {
				t.Errorf("addPartitions(%+v).Topic = %+v, want %d partitions assigned %v", s.cmd, r.Topic, s.cmd.Count, s.assignment)
			}
		})
	}

	// Growing a topic does not move the rotation of new topics.
	r := d.do(kindCreateTopic, createTopicCmd{Name: "c", ID: idFor("c"), Partitions: 1, ReplicationFactor: 1, Candidates: live})
	if r.Code != "" || r.Topic.Assignment[0][0] != 3 {
		t.Errorf("createTopic(c) after growing = %+v, want a topic starting on node 3", r)
	}
}

func TestClusterSM_nodes(t *testing.T) {
	d := bootedCluster(t, 1, 2, 3)
	// The steps run in order on one machine.
	steps := []struct {
		name    string
		kind    kind
		body    any
		code    string
		changed bool
		node    uint64    // the node to check afterwards, if any
		state   NodeState // its state
	}{
		{"add a node", kindAddNode, addNodeCmd{ID: 4, RaftAddress: nodeAddr(4)}, "", true, 4, NodeJoining},
		{"repeated add is a no-op", kindAddNode, addNodeCmd{ID: 4, RaftAddress: nodeAddr(4)}, "", false, 4, NodeJoining},
		{"add the same id at another address", kindAddNode, addNodeCmd{ID: 4, RaftAddress: nodeAddr(9)}, "node_exists", false, 4, NodeJoining},
		{"add another id at a joining node's address", kindAddNode, addNodeCmd{ID: 5, RaftAddress: nodeAddr(4)}, "node_exists", false, 0, ""},
		{"add another id at an active node's address", kindAddNode, addNodeCmd{ID: 5, RaftAddress: nodeAddr(1)}, "node_exists", false, 0, ""},
		{"add node 0", kindAddNode, addNodeCmd{ID: 0, RaftAddress: nodeAddr(8)}, "unknown_node", false, 0, ""},
		{"registration makes a joining node active", kindRegisterNode, registration(4), "", true, 4, NodeActive},
		{"add of an active node is a no-op", kindAddNode, addNodeCmd{ID: 4, RaftAddress: nodeAddr(4)}, "", false, 4, NodeActive},
		{"remove a node", kindRemoveNode, removeNodeCmd{ID: 4}, "", true, 4, NodeRemoved},
		{"registering a removed node is refused", kindRegisterNode, registration(4), "node_removed", false, 4, NodeRemoved},
		{"re-adding a removed id is refused", kindAddNode, addNodeCmd{ID: 4, RaftAddress: nodeAddr(4)}, "node_removed", false, 4, NodeRemoved},
		{"re-adding a removed id at a new address is refused", kindAddNode, addNodeCmd{ID: 4, RaftAddress: nodeAddr(9)}, "node_removed", false, 4, NodeRemoved},
		{"a removed node's address can be reused", kindAddNode, addNodeCmd{ID: 6, RaftAddress: nodeAddr(4)}, "", true, 6, NodeJoining},
		{"remove an unknown node", kindRemoveNode, removeNodeCmd{ID: 99}, "unknown_node", false, 0, ""},
		{"register node 0", kindRegisterNode, registerNodeCmd{Node: Node{RaftAddress: nodeAddr(7)}}, "unknown_node", false, 0, ""},
		{"a node that was never added registers as active", kindRegisterNode, registration(7), "", true, 7, NodeActive},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			before := d.snapshot()
			r := d.do(s.kind, s.body)
			checkCode(t, fmt.Sprintf("%s(%+v)", s.name, s.body), r, s.code)
			if changed := !bytes.Equal(d.snapshot(), before); changed != s.changed {
				t.Errorf("%s(%+v) changed the state: %t, want %t", s.name, s.body, changed, s.changed)
			}
			var want []Change
			if s.changed {
				want = []Change{{Group: ClusterGroup, Index: d.index, Kind: ChangeNode, Node: s.node}}
			}
			if got := d.changes(); !reflect.DeepEqual(got, want) {
				t.Errorf("%s(%+v) published %+v, want %+v", s.name, s.body, got, want)
			}
			if s.node == 0 {
				return
			}
			var got NodeState
			for _, n := range d.clusterView().Nodes {
				if n.ID == s.node {
					got = n.State
				}
			}
			if got != s.state {
				t.Errorf("after %s: node %d state = %q, want %q", s.name, s.node, got, s.state)
			}
		})
	}
}

// TestPartitionSM_dataDriven runs each testdata/partition_*.txt file
// against a fresh partition state machine. A case is a directive line, input
// lines, "----" and the expected output up to a blank line; '#' lines
// between cases are comments. With -rewrite the expected output is replaced
// with what the code produces.
//
//	init      one partition a line:
//	          topic/partition replicas=1,2,3 leader=1 isr=1,2,3 [leader_epoch=N] [partition_epoch=N]
//	update    one PartitionUpdate a line, all the lines one batch:
//	          topic/partition epochs=<leader epoch>/<partition epoch> [leader=N|none] [isr=1,2] [unclean]
//	remove T  drop topic T's partitions
//	show [T]  every partition (of topic T)
//
// init, update and remove print their result, one line per item for update,
// then "changes:" and what the command published; update then prints the
// events it appended to the outbox, one "event:" line each, or "events:
// none". A topic's id is idFor(name).
func TestPartitionSM_dataDriven(t *testing.T) {
	files, err := filepath.Glob("testdata/partition_*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/partition_*.txt files")
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			cases, trailer := datadriven.Parse(t, path)
			d := newPartitionDriver(t)
			got := make([][]string, len(cases))
			for i, c := range cases {
				got[i] = runPartitionCase(t, d, path, c)
				datadriven.Check(t, path, c, got[i])
			}
			datadriven.RewriteIfAsked(t, path, cases, got, trailer)
		})
	}
}

func runPartitionCase(t *testing.T, d *driver, path string, c datadriven.Case) []string {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s:%d: %s: %s", path, c.Line, c.Cmd, fmt.Sprintf(format, args...))
	}
	verb, arg, _ := strings.Cut(c.Cmd, " ")
	var out []string
	lastSeq := d.m.(*partitionSM).out.LastSeq
	switch verb {
	case "init":
		var parts []Partition
		for _, line := range c.Input {
			p, err := parsePartition(line)
			if err != nil {
				fail("%v", err)
			}
			parts = append(parts, p)
		}
		out = append(out, resultLine(d.do(kindInitPartitions, initPartitionsCmd{Partitions: parts})))
	case "update":
		var updates []PartitionUpdate
		for _, line := range c.Input {
			u, err := parseUpdate(line)
			if err != nil {
				fail("%v", err)
			}
			updates = append(updates, u)
		}
		r := d.do(kindUpdatePartitions, updatePartitionsCmd{Updates: updates, Outbox: true})
		if r.Code != "" || len(r.Items) != len(updates) {
			out = append(out, fmt.Sprintf("%s with %d items for %d updates", resultLine(r), len(r.Items), len(updates)))
			break
		}
		for i, item := range r.Items {
			ref := strings.Fields(c.Input[i])[0]
			switch {
			case item.Code == "":
				out = append(out, fmt.Sprintf("%s ok: %s", ref, partitionState(*item.Partition)))
			case item.Partition != nil:
				out = append(out, fmt.Sprintf("%s %s: %s; current %s", ref, item.Code, item.Message, partitionState(*item.Partition)))
			default:
				out = append(out, fmt.Sprintf("%s %s: %s", ref, item.Code, item.Message))
			}
		}
	case "remove":
		out = append(out, resultLine(d.do(kindRemovePartitions, removePartitionsCmd{TopicID: idFor(arg)})))
	case "show":
		if len(c.Input) != 0 {
			fail("show takes no input")
		}
		for _, p := range d.partitions() {
			if arg == "" || p.Topic == arg {
				out = append(out, fmt.Sprintf("%s/%d replicas=%s %s", p.Topic, p.Partition, idList(p.Replicas), partitionState(p)))
			}
		}
		if out == nil {
			out = append(out, "no partitions")
		}
		return out
	default:
		fail("unknown directive %q", verb)
	}
	// Every command but show reports what it published.
	var changes []string
	for _, ch := range d.changes() {
		if ch.Group != testPartitionGroup || ch.Index != d.index || ch.TopicID != idFor(ch.Topic) {
			fail("published %+v, want group %d, index %d and the id of topic %q", ch, testPartitionGroup, d.index, ch.Topic)
		}
		changes = append(changes, fmt.Sprintf("%s %s/%d", ch.Kind, ch.Topic, ch.Partition))
	}
	if changes == nil {
		changes = []string{"none"}
	}
	out = append(out, "changes: "+strings.Join(changes, ", "))
	if verb != "update" {
		return out
	}
	n := len(out)
	for _, e := range d.m.(*partitionSM).out.Events {
		if e.Seq > lastSeq {
			out = append(out, "event: "+eventLine(e))
		}
	}
	if len(out) == n {
		out = append(out, "events: none")
	}
	return out
}

// eventLine renders a partition event for the data-driven tests.
func eventLine(e Event) string {
	leader := func(id uint64) string {
		if id == NoLeader {
			return "none"
		}
		return strconv.FormatUint(id, 10)
	}
	s := fmt.Sprintf("#%d %s %s/%d leader=%s->%s isr=%s->%s epochs=%d/%d", e.Seq, e.Type, e.Topic, e.Partition,
		leader(e.PreviousLeader), leader(e.Leader), idList(e.PreviousISR), idList(e.ISR), e.LeaderEpoch, e.PartitionEpoch)
	if e.Unclean {
		s += " unclean"
	}
	return s
}

func resultLine(r result) string {
	if r.Code == "" {
		return "ok"
	}
	return fmt.Sprintf("%s: %s", r.Code, r.Message)
}

func partitionState(p Partition) string {
	leader := strconv.FormatUint(p.Leader, 10)
	if p.Leader == NoLeader {
		leader = "none"
	}
	return fmt.Sprintf("leader=%s leader_epoch=%d isr=%s partition_epoch=%d", leader, p.LeaderEpoch, idList(p.ISR), p.PartitionEpoch)
}

func idList(ids []uint64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatUint(id, 10)
	}
	return strings.Join(s, ",")
}

func parseIDs(s string) ([]uint64, error) {
	ids := []uint64{}
	for f := range strings.SplitSeq(s, ",") {
		if f == "" {
			continue
		}
		id, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// parseRef parses "topic/partition".
func parseRef(s string) (string, int32, error) {
	topic, p, ok := strings.Cut(s, "/")
	if !ok {
		return "", 0, fmt.Errorf("%q: want topic/partition", s)
	}
	n, err := strconv.ParseInt(p, 10, 32)
	return topic, int32(n), err
}

func parsePartition(line string) (Partition, error) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return Partition{}, fmt.Errorf("empty line")
	}
	topic, n, err := parseRef(f[0])
	if err != nil {
		return Partition{}, err
	}
	p := Partition{Topic: topic, TopicID: idFor(topic), Partition: n}
	for _, kv := range f[1:] {
		k, v, _ := strings.Cut(kv, "=")
		var err error
		switch k {
		case "replicas":
			p.Replicas, err = parseIDs(v)
		case "isr":
			p.ISR, err = parseIDs(v)
		case "leader":
			p.Leader, err = strconv.ParseUint(v, 10, 64)
		case "leader_epoch", "partition_epoch":
			var e int64
			e, err = strconv.ParseInt(v, 10, 32)
			if k == "leader_epoch" {
				p.LeaderEpoch = int32(e)
			} else {
				p.PartitionEpoch = int32(e)
			}
		default:
			err = fmt.Errorf("unknown key %q", k)
		}
		if err != nil {
			return Partition{}, fmt.Errorf("%q: %v", kv, err)
		}
	}
	return p, nil
}

func parseUpdate(line string) (PartitionUpdate, error) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return PartitionUpdate{}, fmt.Errorf("empty line")
	}
	topic, n, err := parseRef(f[0])
	if err != nil {
		return PartitionUpdate{}, err
	}
	u := PartitionUpdate{TopicID: idFor(topic), Partition: n}
	for _, kv := range f[1:] {
		k, v, _ := strings.Cut(kv, "=")
		var err error
		switch k {
		case "epochs":
			le, pe, ok := strings.Cut(v, "/")
			if !ok {
				return PartitionUpdate{}, fmt.Errorf("%q: want epochs=<leader epoch>/<partition epoch>", kv)
			}
			var a, b int64
			if a, err = strconv.ParseInt(le, 10, 32); err == nil {
				b, err = strconv.ParseInt(pe, 10, 32)
			}
			u.ExpectedLeaderEpoch, u.ExpectedPartitionEpoch = int32(a), int32(b)
		case "leader":
			var id uint64
			if v != "none" {
				id, err = strconv.ParseUint(v, 10, 64)
			}
			u.Leader = &id
		case "isr":
			u.ISR, err = parseIDs(v)
		case "unclean":
			u.Unclean = true
		default:
			err = fmt.Errorf("unknown key %q", k)
		}
		if err != nil {
			return PartitionUpdate{}, fmt.Errorf("%q: %v", kv, err)
		}
	}
	return u, nil
}

func TestSnapshot_restoresTheAppliedIndex(t *testing.T) {
	f := newFeed()
	src := newClusterSM(f)
	for i, cmd := range []struct {
		k    kind
		body any
	}{
		{kindBootstrap, bootstrapCmd{Name: "c", PartitionGroups: 4}},
		{kindRegisterNode, registerNodeCmd{Node: Node{ID: 1, RaftAddress: "10.0.0.1:9093"}}},
	} {
		b, _ := encode(cmd.k, cmd.body)
		if _, err := src.Update(sm.Entry{Index: uint64(i + 7), Cmd: b}); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := src.SaveSnapshot(&buf, nil, nil); err != nil {
		t.Fatal(err)
	}
	dst := newClusterSM(f)
	if err := dst.RecoverFromSnapshot(&buf, nil, nil); err != nil {
		t.Fatal(err)
	}
	if dst.index != 8 {
		t.Errorf("clusterSM index after RecoverFromSnapshot = %d, want 8", dst.index)
	}

	g := newPartitionSM(2, f)
	b, _ := encode(kindInitPartitions, initPartitionsCmd{Partitions: []Partition{{Topic: "t", TopicID: TopicID{1}, Replicas: []uint64{1}, Leader: 1, ISR: []uint64{1}}}})
	if _, err := g.Update(sm.Entry{Index: 42, Cmd: b}); err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	if err := g.SaveSnapshot(&buf, nil, nil); err != nil {
		t.Fatal(err)
	}
	h := newPartitionSM(2, f)
	if err := h.RecoverFromSnapshot(&buf, nil, nil); err != nil {
		t.Fatal(err)
	}
	if h.index != 42 || len(h.parts) != 1 {
		t.Errorf("partitionSM after RecoverFromSnapshot = index %d, %d partitions; want 42, 1", h.index, len(h.parts))
	}
}

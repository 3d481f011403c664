package raft

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"
)

// outbox returns a copy of the machine's outbox.
func (d *driver) outbox() outbox {
	d.t.Helper()
	switch m := d.m.(type) {
	case *clusterSM:
		return m.st.Outbox
	case *partitionSM:
		return m.out
	}
	d.t.Fatalf("%T has no outbox", d.m)
	return outbox{}
}

// seqs returns the Seq of each event.
func seqs(events []Event) []uint64 {
	out := []uint64{}
	for _, e := range events {
		out = append(out, e.Seq)
	}
	return out
}

// seqRange returns from, from+1, ..., to.
func seqRange(from, to uint64) []uint64 {
	out := []uint64{}
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// someEvents returns n policy_fell_back events, which an outbox never
// drops as repeats (as the cluster group's does node events).
func someEvents(n int) []Event {
	out := make([]Event, n)
	for i := range out {
		out[i] = Event{Type: EventPolicyFellBack, Time: int64(1000 + i), Policy: "p", Detail: strconv.Itoa(i)}
	}
	return out
}

// onePartition returns a partition driver holding orders/3 with replicas
// 1, 2, 3, led by leader with the given ISR, its feed drained.
func onePartition(t testing.TB, leader uint64, isr ...uint64) *driver {
	t.Helper()
	d := newPartitionDriver(t)
	r := d.do(kindInitPartitions, initPartitionsCmd{Partitions: []Partition{
		{Topic: "orders", TopicID: idFor("orders"), Partition: 3, Replicas: []uint64{1, 2, 3}, Leader: leader, ISR: isr},
	}})
	if r.Code != "" {
		t.Fatalf("init partitions = %s: %s, want success", r.Code, r.Message)
	}
	d.changes()
	return d
}

func TestPartitionSM_update_appendsLeaderChangedEvent(t *testing.T) {
	d := onePartition(t, 1, 1, 2, 3)
	two := uint64(2)
	u := PartitionUpdate{TopicID: idFor("orders"), Partition: 3, Leader: &two, ISR: []uint64{2, 3}, Time: 1_767_225_600_123,
		Election: &ElectionInfo{Reason: "leader_timeout", Policy: "prefer-label", PolicyDigest: "sha256:9f86d081",
			Detail: "node 2 is in the preferred rack", Controller: 3, LatencyMs: 1.25}}
	r := d.do(kindUpdatePartitions, updatePartitionsCmd{Updates: []PartitionUpdate{u}, Outbox: true})
	if r.Code != "" || len(r.Items) != 1 || r.Items[0].Code != "" {
		t.Fatalf("update = %+v, want success", r)
	}
	want := []Event{{
		Seq: 1, Type: EventLeaderChanged, Time: 1_767_225_600_123,
		Topic: "orders", TopicID: idFor("orders"), Partition: 3,
		PreviousLeader: 1, Leader: 2, LeaderEpoch: 1, PartitionEpoch: 1,
		Replicas: []uint64{1, 2, 3}, ISR: []uint64{2, 3}, PreviousISR: []uint64{1, 2, 3},
		Reason: "leader_timeout", Policy: "prefer-label", PolicyDigest: "sha256:9f86d081",
		Controller: 3, LatencyMs: 1.25, Detail: "node 2 is in the preferred rack",
	}}
	o := d.outbox()
	if !reflect.DeepEqual(o.Events, want) {
		t.Errorf("outbox after a leader change = %+v, want %+v", o.Events, want)
	}
	if o.LastSeq != 1 || o.Acked != 0 || o.Dropped != 0 || r.EventsDropped != 0 {
		t.Errorf("outbox = last seq %d, acked %d, dropped %d (result %d); want 1, 0, 0 (0)", o.LastSeq, o.Acked, o.Dropped, r.EventsDropped)
	}
}

func TestPartitionSM_update_events(t *testing.T) {
	id := idFor("orders")
	leader := func(n uint64) *uint64 { return &n }
	tests := []struct {
		name   string
		leader uint64   // at the start; replicas are 1, 2, 3
		isr    []uint64 // at the start
		u      PartitionUpdate
		outbox bool // the command's Outbox
		want   []string
	}{
		{"leader change", 1, []uint64{1, 2, 3}, PartitionUpdate{Leader: leader(2)}, true,
			[]string{"#1 leader_changed orders/3 leader=1->2 isr=1,2,3->1,2,3 epochs=1/1"}},
		{"leader change that drops the old leader from the ISR is one event", 1, []uint64{1, 2, 3},
			PartitionUpdate{Leader: leader(3), ISR: []uint64{2, 3}}, true,
			[]string{"#1 leader_changed orders/3 leader=1->3 isr=1,2,3->2,3 epochs=1/1"}},
		{"no eligible leader", 1, []uint64{1}, PartitionUpdate{Leader: leader(NoLeader)}, true,
			[]string{"#1 partition_offline orders/3 leader=1->none isr=1->1 epochs=1/1"}},
		{"unclean leader", 1, []uint64{1}, PartitionUpdate{Leader: leader(3), Unclean: true}, true,
			[]string{"#1 leader_changed orders/3 leader=1->3 isr=1->3 epochs=1/1 unclean"}},
		{"unclean allowed but not needed", 1, []uint64{1, 2}, PartitionUpdate{Leader: leader(2), Unclean: true}, true,
			[]string{"#1 leader_changed orders/3 leader=1->2 isr=1,2->1,2 epochs=1/1"}},
		{"back online", NoLeader, []uint64{2}, PartitionUpdate{Leader: leader(2)}, true,
			[]string{"#1 leader_changed orders/3 leader=none->2 isr=2->2 epochs=1/1"}},
		{"ISR shrinks", 1, []uint64{1, 2, 3}, PartitionUpdate{ISR: []uint64{1, 3}}, true,
			[]string{"#1 isr_shrunk orders/3 leader=1->1 isr=1,2,3->1,3 epochs=0/1"}},
		{"ISR expands", 1, []uint64{1}, PartitionUpdate{ISR: []uint64{1, 2, 3}}, true,
			[]string{"#1 isr_expanded orders/3 leader=1->1 isr=1->1,2,3 epochs=0/1"}},
		{"ISR swaps a replica", 1, []uint64{1, 2}, PartitionUpdate{ISR: []uint64{1, 3}}, true,
			[]string{"#1 isr_shrunk orders/3 leader=1->1 isr=1,2->1,3 epochs=0/1", "#2 isr_expanded orders/3 leader=1->1 isr=1,2->1,3 epochs=0/1"}},
		{"ISR reordered", 1, []uint64{1, 2}, PartitionUpdate{ISR: []uint64{2, 1}}, true, nil},
		{"stale update", 1, []uint64{1, 2, 3}, PartitionUpdate{ExpectedLeaderEpoch: 1, Leader: leader(2)}, true, nil},
		{"invalid update", 1, []uint64{1, 2, 3}, PartitionUpdate{Leader: leader(7)}, true, nil},
		{"update that changes nothing", 1, []uint64{1, 2, 3}, PartitionUpdate{Leader: leader(1), ISR: []uint64{1, 2, 3}}, true, nil},
		{"unknown partition", 1, []uint64{1, 2, 3}, PartitionUpdate{Partition: 4, Leader: leader(2)}, true, nil},
		{"command from before the outbox", 1, []uint64{1, 2, 3}, PartitionUpdate{Leader: leader(2)}, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := onePartition(t, tt.leader, tt.isr...)
			u := tt.u
			u.TopicID = id
			if u.Partition == 0 {
				u.Partition = 3
			}
			d.do(kindUpdatePartitions, updatePartitionsCmd{Updates: []PartitionUpdate{u}, Outbox: tt.outbox})
			var got []string
			for _, e := range d.outbox().Events {
				got = append(got, eventLine(e))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("update(%+v) appended %q, want %q", tt.u, got, tt.want)
			}
		})
	}
}

// TestPartitionSM_update_oldCommandStillApplies feeds an update as a binary
// from before the outbox wrote it: it applies, and appends nothing, so every
// replica's outbox agrees whatever snapshot it replayed such entries from.
func TestPartitionSM_update_oldCommandStillApplies(t *testing.T) {
	d := onePartition(t, 1, 1, 2, 3)
	old := fmt.Sprintf(`{"updates":[{"topic_id":%q,"partition":3,"expected_leader_epoch":0,"expected_partition_epoch":0,"leader":2,"isr":null}]}`,
		idFor("orders").String())
	r := d.apply(append([]byte{commandVersion, byte(kindUpdatePartitions)}, old...))
	if r.Code != "" || len(r.Items) != 1 || r.Items[0].Code != "" || r.Items[0].Partition.Leader != 2 {
		t.Fatalf("old update = %+v, want leader 2", r)
	}
	if o := d.outbox(); !reflect.DeepEqual(o, outbox{}) {
		t.Errorf("outbox after an old update = %+v, want empty", o)
	}
}

// outboxMachines are the two kinds of state machine with an outbox, ready
// for outbox commands.
var outboxMachines = []struct {
	name string
	new  func(testing.TB) *driver
}{
	{"cluster group", func(t testing.TB) *driver { return bootedCluster(t, 1) }},
	{"partition group", newPartitionDriver},
}

func TestOutbox_ack(t *testing.T) {
	for _, m := range outboxMachines {
		t.Run(m.name, func(t *testing.T) {
			d := m.new(t)
			if r := d.do(kindAppendEvents, appendEventsCmd{Events: someEvents(5)}); r.Code != "" {
				t.Fatalf("append = %s: %s, want success", r.Code, r.Message)
			}
			// The steps run in order on one machine.
			steps := []struct {
				upTo    uint64
				code    string
				acked   uint64
				pending []uint64
			}{
				{0, "", 0, seqRange(1, 5)},
				{2, "", 2, seqRange(3, 5)},
				{2, "", 2, seqRange(3, 5)}, // a repeat is a no-op
				{1, "", 2, seqRange(3, 5)}, // an older mark is a no-op
				{6, "invalid_update", 2, seqRange(3, 5)},
				{5, "", 5, seqRange(6, 5)},
				{5, "", 5, seqRange(6, 5)},
			}
			for _, s := range steps {
				before := d.snapshot()
				r := d.do(kindAckEvents, ackEventsCmd{UpTo: s.upTo})
				call := fmt.Sprintf("ack(%d)", s.upTo)
				checkCode(t, call, r, s.code)
				o := d.outbox()
				if o.Acked != s.acked || !slices.Equal(seqs(o.Events), s.pending) || o.LastSeq != 5 {
					t.Errorf("after %s: acked %d, pending %v, last seq %d; want %d, %v, 5", call, o.Acked, seqs(o.Events), o.LastSeq, s.acked, s.pending)
				}
				if s.code != "" && !bytes.Equal(d.snapshot(), before) {
					t.Errorf("refused %s changed the state", call)
				}
			}
			// Sequence numbers go on after everything was acked.
			d.do(kindAppendEvents, appendEventsCmd{Events: someEvents(1)})
			if got := seqs(d.outbox().Events); !slices.Equal(got, []uint64{6}) {
				t.Errorf("append after acking all: pending %v, want [6]", got)
			}
		})
	}
}

func TestOutbox_boundDropsOldest(t *testing.T) {
	for _, m := range outboxMachines {
		t.Run(m.name, func(t *testing.T) {
			d := m.new(t)
			// The steps run in order on one machine.
			steps := []struct {
				name    string
				cmd     any
				kind    kind
				code    string
				dropped uint64 // by this command
				first   uint64 // the oldest pending event's seq afterwards
				last    uint64
				total   uint64 // Dropped afterwards
			}{
				{"one short of the bound", appendEventsCmd{Events: someEvents(MaxOutboxEvents - 1)}, kindAppendEvents, "", 0, 1, MaxOutboxEvents - 1, 0},
				{"three more drop the two oldest", appendEventsCmd{Events: someEvents(3)}, kindAppendEvents, "", 2, 3, MaxOutboxEvents + 2, 2},
				{"an ack of dropped events moves the mark only", ackEventsCmd{UpTo: 2}, kindAckEvents, "", 0, 3, MaxOutboxEvents + 2, 2},
				{"more than the bound at once is refused", appendEventsCmd{Events: someEvents(MaxOutboxEvents + 1)}, kindAppendEvents, "invalid_update", 0, 3, MaxOutboxEvents + 2, 2},
				{"the bound at once replaces everything", appendEventsCmd{Events: someEvents(MaxOutboxEvents)}, kindAppendEvents, "", MaxOutboxEvents, MaxOutboxEvents + 3, 2*MaxOutboxEvents + 2, MaxOutboxEvents + 2},
				{"an ack makes room", ackEventsCmd{UpTo: MaxOutboxEvents + 102}, kindAckEvents, "", 0, MaxOutboxEvents + 103, 2*MaxOutboxEvents + 2, MaxOutboxEvents + 2},
				{"which the next appends use", appendEventsCmd{Events: someEvents(100)}, kindAppendEvents, "", 0, MaxOutboxEvents + 103, 2*MaxOutboxEvents + 102, MaxOutboxEvents + 2},
			}
			for _, s := range steps {
				r := d.do(s.kind, s.cmd)
				checkCode(t, s.name, r, s.code)
				if r.EventsDropped != s.dropped {
					t.Errorf("%s: result dropped %d, want %d", s.name, r.EventsDropped, s.dropped)
				}
				o := d.outbox()
				if len(o.Events) == 0 || o.Events[0].Seq != s.first || o.Events[len(o.Events)-1].Seq != o.LastSeq ||
					o.LastSeq != s.last || o.Dropped != s.total || len(o.Events) != int(s.last-s.first+1) || len(o.Events) > MaxOutboxEvents {
					t.Errorf("after %s: %d events from %d, last seq %d, dropped %d; want from %d, last %d, dropped %d",
						s.name, len(o.Events), o.Events[0].Seq, o.LastSeq, o.Dropped, s.first, s.last, s.total)
				}
			}
		})
	}
}

func TestOutbox_append_checksEvents(t *testing.T) {
	long := "a" + strings.Repeat("é", 600) // 1201 bytes; byte 1024 is inside an é
	tests := []struct {
		name   string
		events []Event
		code   string
		want   []Event // the outbox afterwards, on success
	}{
		{"no events", nil, "", nil},
		{"no type", []Event{{Type: EventNodeUp, Node: 1}, {Node: 2}}, "invalid_update", nil},
		{"type too long", []Event{{Type: EventType(strings.Repeat("x", maxEventType+1))}}, "invalid_update", nil},
		{"longest type", []Event{{Type: EventType(strings.Repeat("x", maxEventType))}}, "",
			[]Event{{Seq: 1, Type: EventType(strings.Repeat("x", maxEventType))}}},
		{"a type this binary has no name for", []Event{{Type: "node_relabelled", Node: 2}}, "",
			[]Event{{Seq: 1, Type: "node_relabelled", Node: 2}}},
		{"text is cut at a character boundary", []Event{{Type: EventPolicyRejected, Policy: long, Detail: long, Reason: "ok"}}, "",
			[]Event{{Seq: 1, Type: EventPolicyRejected, Policy: long[:1023], Detail: long[:1023], Reason: "ok"}}},
		{"seq, id and group are the state machine's", []Event{{Seq: 99, ID: "x-1-99", Group: 7, Type: EventNodeUp, Node: 3, Time: 5}}, "",
			[]Event{{Seq: 1, Type: EventNodeUp, Node: 3, Time: 5}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newPartitionDriver(t)
			before := d.snapshot()
			r := d.do(kindAppendEvents, appendEventsCmd{Events: tt.events})
			checkCode(t, "append", r, tt.code)
			if tt.code != "" {
				if !bytes.Equal(d.snapshot(), before) {
					t.Errorf("refused append changed the state to %s", d.snapshot())
				}
				return
			}
			if got := d.outbox().Events; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("outbox after append = %+v, want %+v", got, tt.want)
			}
			for _, e := range d.outbox().Events {
				if !utf8.ValidString(e.Detail) || !utf8.ValidString(e.Policy) {
					t.Errorf("event %d text is not valid UTF-8 after the cut", e.Seq)
				}
			}
		})
	}
}

func TestOutbox_survivesSnapshot(t *testing.T) {
	for _, m := range outboxMachines {
		t.Run(m.name, func(t *testing.T) {
			d := m.new(t)
			d.do(kindAppendEvents, appendEventsCmd{Events: someEvents(MaxOutboxEvents)})
			d.do(kindAppendEvents, appendEventsCmd{Events: someEvents(3)}) // drops 1, 2, 3
			d.do(kindAckEvents, ackEventsCmd{UpTo: MaxOutboxEvents})
			want := d.outbox()
			if want.LastSeq != MaxOutboxEvents+3 || want.Acked != MaxOutboxEvents || want.Dropped != 3 || len(want.Events) != 3 {
				t.Fatalf("outbox before the snapshot = last seq %d, acked %d, dropped %d, %d events", want.LastSeq, want.Acked, want.Dropped, len(want.Events))
			}
			snap := d.snapshot()

			r := m.new(t)
			if err := r.m.RecoverFromSnapshot(bytes.NewReader(snap), nil, nil); err != nil {
				t.Fatalf("RecoverFromSnapshot() = %v", err)
			}
			if got := r.outbox(); !reflect.DeepEqual(got, want) {
				t.Errorf("outbox after RecoverFromSnapshot = %+v, want %+v", got, want)
			}
			r.index = d.index
			r.do(kindAppendEvents, appendEventsCmd{Events: someEvents(1)})
			d.do(kindAppendEvents, appendEventsCmd{Events: someEvents(1)})
			got := r.outbox()
			if !slices.Equal(seqs(got.Events), seqRange(MaxOutboxEvents+1, MaxOutboxEvents+4)) {
				t.Errorf("append after restore: pending %v, want %d..%d", seqs(got.Events), MaxOutboxEvents+1, MaxOutboxEvents+4)
			}
			if !bytes.Equal(r.snapshot(), d.snapshot()) {
				t.Errorf("restored machine's snapshot after an append differs from the original's")
			}
		})
	}
}

// TestSnapshot_withoutOutboxLoads restores snapshots as binaries from
// before the outbox wrote them: they load with an empty outbox, the first
// event is number 1, and a machine without events writes them unchanged.
func TestSnapshot_withoutOutboxLoads(t *testing.T) {
	id := idFor("t").String()
	tests := []struct {
		name string
		new  func(testing.TB) *driver
		snap string
	}{
		{"cluster group", newClusterDriver, `{"index":3,"state":{"bootstrapped":true,"name":"a","partition_groups":4,` +
			`"nodes":{"1":{"id":1,"raft_address":"10.0.0.1:9093","state":"active"}},"topics":{},"tombstones":{},"rotation":0,"next_producer_id":0}}`},
		{"partition group", newPartitionDriver, `{"index":7,"partitions":[{"topic":"t","topic_id":"` + id +
			`","partition":0,"replicas":[1,2],"leader":1,"leader_epoch":0,"isr":[1,2],"partition_epoch":0}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.new(t)
			if err := d.m.RecoverFromSnapshot(strings.NewReader(snapshotVersion+tt.snap+"\n"), nil, nil); err != nil {
				t.Fatalf("RecoverFromSnapshot(old snapshot) = %v", err)
			}
			if o := d.outbox(); !reflect.DeepEqual(o, outbox{}) {
				t.Errorf("outbox from an old snapshot = %+v, want empty", o)
			}
			if snap := d.snapshot(); bytes.Contains(snap, []byte("outbox")) {
				t.Errorf("snapshot with no events = %s, want no outbox in it", snap)
			}
			d.do(kindAppendEvents, appendEventsCmd{Events: someEvents(1)})
			if got := seqs(d.outbox().Events); !slices.Equal(got, []uint64{1}) {
				t.Errorf("first append after an old snapshot: pending %v, want [1]", got)
			}
		})
	}
}

func TestPartitionSM_outboxIsDeterministic(t *testing.T) {
	id := idFor("orders")
	leader := func(n uint64) *uint64 { return &n }
	update := func(u ...PartitionUpdate) []byte {
		return command(t, kindUpdatePartitions, updatePartitionsCmd{Updates: u, Outbox: true})
	}
	el := &ElectionInfo{Reason: "rebalance", Policy: "first-isr", Controller: 2, LatencyMs: 0.125, Detail: "preferred"}
	script := []step{
		{"init", command(t, kindInitPartitions, initPartitionsCmd{Partitions: []Partition{
			{Topic: "orders", TopicID: id, Partition: 0, Replicas: []uint64{1, 2, 3}, Leader: 1, ISR: []uint64{1, 2, 3}},
			{Topic: "orders", TopicID: id, Partition: 1, Replicas: []uint64{2, 3, 1}, Leader: 2, ISR: []uint64{2, 3, 1}},
		}}), ""},
		{"elect", update(PartitionUpdate{TopicID: id, Partition: 0, Leader: leader(2), ISR: []uint64{2, 3}, Time: 10, Election: el}), ""},
		{"shrink", update(PartitionUpdate{TopicID: id, Partition: 1, ISR: []uint64{2}, Time: 11}), ""},
		{"stale", update(PartitionUpdate{TopicID: id, Partition: 1, Leader: leader(3), Time: 12}), ""},
		{"append", command(t, kindAppendEvents, appendEventsCmd{Events: someEvents(MaxOutboxEvents - 2)}), ""},
		{"ack", command(t, kindAckEvents, ackEventsCmd{UpTo: 2}), ""},
		{"offline and expand", update(
			PartitionUpdate{TopicID: id, Partition: 0, ExpectedLeaderEpoch: 1, ExpectedPartitionEpoch: 1, Leader: leader(NoLeader), Time: 13},
			PartitionUpdate{TopicID: id, Partition: 1, ExpectedPartitionEpoch: 1, ISR: []uint64{2, 3, 1}, Time: 13},
		), ""},
		{"overflow", command(t, kindAppendEvents, appendEventsCmd{Events: someEvents(10)}), ""},
		{"ack past the end", command(t, kindAckEvents, ackEventsCmd{UpTo: MaxOutboxEvents * 2}), "invalid_update"},
		{"ack most", command(t, kindAckEvents, ackEventsCmd{UpTo: MaxOutboxEvents}), ""},
		{"old ack", command(t, kindAckEvents, ackEventsCmd{UpTo: 3}), ""},
		{"back online", update(PartitionUpdate{TopicID: id, Partition: 0, ExpectedLeaderEpoch: 2, ExpectedPartitionEpoch: 2, Leader: leader(3), Unclean: true, Time: 14}), ""},
	}
	checkDeterministic(t, newPartitionDriver, script)
}

func TestClusterSM_outboxIsDeterministic(t *testing.T) {
	script := []step{
		{"before bootstrap", command(t, kindAppendEvents, appendEventsCmd{Events: someEvents(1)}), "not_bootstrapped"},
		{"bootstrap", command(t, kindBootstrap, bootstrapCmd{Name: "site-a", PartitionGroups: 4}), ""},
		{"register", command(t, kindRegisterNode, registration(1)), ""},
		{"node down", command(t, kindAppendEvents, appendEventsCmd{Events: []Event{{Type: EventNodeDown, Node: 2, Time: 7}}}), ""},
		{"policy events", command(t, kindAppendEvents, appendEventsCmd{Events: []Event{
			{Type: EventPolicyLoaded, Policy: "least-lag", PolicyDigest: "sha256:01", Time: 8},
			{Type: EventPolicyFellBack, Policy: "least-lag", Detail: "deadline exceeded", Time: 9},
		}}), ""},
		{"ack", command(t, kindAckEvents, ackEventsCmd{UpTo: 1}), ""},
		{"many", command(t, kindAppendEvents, appendEventsCmd{Events: someEvents(MaxOutboxEvents)}), ""},
		{"ack past the end", command(t, kindAckEvents, ackEventsCmd{UpTo: MaxOutboxEvents + 4}), "invalid_update"},
		{"node up", command(t, kindAppendEvents, appendEventsCmd{Events: []Event{{Type: EventNodeUp, Node: 2, Time: 20}}}), ""},
		{"ack all", command(t, kindAckEvents, ackEventsCmd{UpTo: MaxOutboxEvents + 4}), ""},
		{"bad ack", []byte("\x01\x1f{\"up_to\":\"x\"}"), "unsupported_command"},
	}
	checkDeterministic(t, newClusterDriver, script)
}

func TestEvent_MarshalJSON(t *testing.T) {
	tests := []struct {
		name  string
		event Event
		want  string
	}{
		{"node event leaves out the partition's zeros", Event{Seq: 4, ID: "a-1-4", Group: 1, Type: EventNodeDown, Time: 99, Node: 2},
			`{"seq":4,"id":"a-1-4","group":1,"type":"node_down","time":99,"node":2}`},
		{"policy event", Event{Seq: 5, Type: EventPolicyRejected, Time: 1, Policy: "x", PolicyDigest: "sha256:00", Detail: "no export decide"},
			`{"seq":5,"type":"policy_rejected","time":1,"policy":"x","policy_digest":"sha256:00","detail":"no export decide"}`},
		{"an event without a topic id keeps numbers that are set", Event{Seq: 6, Type: "custom", Partition: 2, Leader: 3},
			`{"seq":6,"type":"custom","time":0,"partition":2,"leader":3}`},
		{"partition event keeps partition 0, no leader and empty lists", Event{Seq: 7, Type: EventPartitionOffline, Time: 2,
			Topic: "t", TopicID: TopicID{1}, PreviousLeader: 1, LeaderEpoch: 1, PartitionEpoch: 1,
			Replicas: []uint64{1}, ISR: []uint64{}, PreviousISR: []uint64{1}},
			`{"seq":7,"type":"partition_offline","time":2,"topic":"t","topic_id":"AQAAAAAAAAAAAAAAAAAAAA","partition":0,` +
				`"previous_leader":1,"leader":0,"leader_epoch":1,"partition_epoch":1,"replicas":[1],"isr":[],"previous_isr":[1]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.event)
			if err != nil || string(b) != tt.want {
				t.Fatalf("json.Marshal(%+v) = %s, %v, want %s", tt.event, b, err, tt.want)
			}
			var back Event
			if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, tt.event) {
				t.Errorf("json.Unmarshal(%s) = %+v, %v, want %+v", b, back, err, tt.event)
			}
		})
	}
}

func TestOutbox_signalsPublishers(t *testing.T) {
	d := onePartition(t, 1, 1, 2, 3)
	f := d.m.(*partitionSM).feed
	two := uint64(2)
	steps := []struct {
		name  string
		cmd   []byte
		fires bool
	}{
		{"stale update", command(t, kindUpdatePartitions, updatePartitionsCmd{Outbox: true,
			Updates: []PartitionUpdate{{TopicID: idFor("orders"), Partition: 3, ExpectedLeaderEpoch: 4, Leader: &two}}}), false},
		{"leader change", command(t, kindUpdatePartitions, updatePartitionsCmd{Outbox: true,
			Updates: []PartitionUpdate{{TopicID: idFor("orders"), Partition: 3, Leader: &two}}}), true},
		{"ack", command(t, kindAckEvents, ackEventsCmd{UpTo: 1}), false},
		{"append", command(t, kindAppendEvents, appendEventsCmd{Events: someEvents(1)}), true},
		{"refused append", command(t, kindAppendEvents, appendEventsCmd{Events: []Event{{}}}), false},
	}
	for _, s := range steps {
		wait := f.outbox.wait()
		d.apply(s.cmd)
		select {
		case <-wait:
			if !s.fires {
				t.Errorf("%s closed the OutboxChanged channel, want it open", s.name)
			}
		default:
			if s.fires {
				t.Errorf("%s left the OutboxChanged channel open, want it closed", s.name)
			}
		}
	}
	wait := f.outbox.wait()
	if err := d.m.RecoverFromSnapshot(bytes.NewReader(d.snapshot()), nil, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wait:
	default:
		t.Errorf("RecoverFromSnapshot left the OutboxChanged channel open, want it closed")
	}
}

func TestStore_noteDropped_logsOncePerInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		s := &Store{log: slog.New(slog.NewTextHandler(&buf, nil)), cluster: newClusterSM(newFeed()), drops: map[uint64]*dropReport{}}
		lines := func() int { return strings.Count(buf.String(), "event outbox full") }
		s.noteDropped(ClusterGroup, 0)
		if n := lines(); n != 0 {
			t.Fatalf("noteDropped(0) logged %d lines, want none", n)
		}
		s.noteDropped(ClusterGroup, 2)
		s.noteDropped(ClusterGroup, 1)
		s.noteDropped(ClusterGroup, 1)
		if n := lines(); n != 1 || !strings.Contains(buf.String(), "dropped=2 ") {
			t.Fatalf("three drops in a row logged %q, want one line with dropped=2", buf.String())
		}
		time.Sleep(dropLogInterval)
		s.noteDropped(ClusterGroup, 1)
		if n := lines(); n != 2 || !strings.Contains(buf.String(), "dropped=3 ") {
			t.Errorf("a drop an interval later logged %q, want a second line counting the 3 since the first", buf.String())
		}
	})
}

func TestCluster_eventsReachEveryNodeInOrder(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx := ctxT(t)
	topic, err := c.stores[1].CreateTopic(ctx, TopicSpec{Name: "watched", Partitions: 1, ReplicationFactor: 3})
	if err != nil {
		t.Fatal(err)
	}
	c.topicEverywhere(topic)
	group := c.stores[1].GroupOf(topic.ID, 0)
	wake := c.stores[3].OutboxChanged()
	start := time.Now().UnixMilli()

	// A controller on node 2 moves the leader; the new leader's node
	// expands the ISR again; node 3 reports a node down and a fallback.
	p, _ := c.stores[2].Partition(topic.ID, 0)
	old, to := p.Replicas[0], p.Replicas[1]
	isr := slices.DeleteFunc(slices.Clone(p.ISR), func(id uint64) bool { return id == old })
	if _, err := c.stores[2].UpdatePartition(ctx, PartitionUpdate{TopicID: topic.ID, Partition: 0, Leader: &to, ISR: isr,
		Election: &ElectionInfo{Reason: "leader_timeout", Policy: "first-isr", Controller: 2, LatencyMs: 0.5}}); err != nil {
		t.Fatalf("UpdatePartition(leader) = %v", err)
	}
	if _, err := c.stores[to].UpdatePartition(ctx, PartitionUpdate{TopicID: topic.ID, Partition: 0,
		ExpectedLeaderEpoch: 1, ExpectedPartitionEpoch: 1, ISR: append(slices.Clone(isr), old)}); err != nil {
		t.Fatalf("UpdatePartition(expand) = %v", err)
	}
	if err := c.stores[3].AppendEvents(ctx, ClusterGroup, []Event{
		{Type: EventNodeDown, Node: old}, {Type: EventPolicyFellBack, Policy: "least-lag", Detail: "deadline exceeded"},
	}); err != nil {
		t.Fatalf("AppendEvents = %v", err)
	}
	select {
	case <-wake:
	case <-ctx.Done():
		t.Fatalf("OutboxChanged on node 3 never closed")
	}

	// want lists each group's events by type, oldest first.
	want := map[uint64][]EventType{
		group:        {EventLeaderChanged, EventISRExpanded},
		ClusterGroup: {EventNodeDown, EventPolicyFellBack},
	}
	var first map[uint64][]Event
	for id := uint64(1); id <= 3; id++ {
		s := c.stores[id]
		eventually(t, fmt.Sprintf("node %d has every event", id), func() error {
			got := map[uint64][]Event{}
			for g, types := range want {
				events, acked := s.PendingEvents(g, 0)
				if acked != 0 || len(events) != len(types) {
					return fmt.Errorf("group %d: %d events, acked %d", g, len(events), acked)
				}
				for i, e := range events {
					if e.Type != types[i] || e.Seq != uint64(i+1) || e.Group != g || e.ID != fmt.Sprintf("test-%d-%d", g, i+1) {
						return fmt.Errorf("group %d event %d = %+v, want %s number %d", g, i, e, types[i], i+1)
					}
					if e.Time < start || e.Time > time.Now().UnixMilli() {
						return fmt.Errorf("group %d event %d time %d, want the proposer's clock since %d", g, i, e.Time, start)
					}
				}
				got[g] = events
			}
			if first == nil {
				first = got
			} else if !reflect.DeepEqual(got, first) {
				return fmt.Errorf("events = %+v, node 1 has %+v", got, first)
			}
			return nil
		})
	}
	e := first[group][0]
	if e.PreviousLeader != old || e.Leader != to || e.LeaderEpoch != 1 || e.Reason != "leader_timeout" || e.Controller != 2 || e.LatencyMs != 0.5 ||
		!slices.Equal(e.PreviousISR, p.ISR) || !slices.Equal(e.ISR, isr) {
		t.Errorf("leader_changed event = %+v, want %d -> %d, ISR %v -> %v, the election's reason, controller and latency", e, old, to, p.ISR, isr)
	}
	if got := c.stores[1].EventID(group, 2); got != first[group][1].ID {
		t.Errorf("EventID(%d, 2) = %q, want %q", group, got, first[group][1].ID)
	}

	// An ack from any node moves every node's mark.
	if err := c.stores[3].AckEvents(ctx, group, 1); err != nil {
		t.Fatalf("AckEvents(%d, 1) = %v", group, err)
	}
	if err := c.stores[1].AckEvents(ctx, ClusterGroup, 2); err != nil {
		t.Fatalf("AckEvents(cluster, 2) = %v", err)
	}
	if err := c.stores[2].AckEvents(ctx, group, 0); err != nil {
		t.Errorf("AckEvents(%d, 0) below the mark = %v, want a no-op", group, err)
	}
	if err := c.stores[2].AckEvents(ctx, group, 3); !errors.Is(err, ErrInvalidUpdate) {
		t.Errorf("AckEvents(%d, 3) past the newest = %v, want ErrInvalidUpdate", group, err)
	}
	if err := c.stores[2].AckEvents(ctx, 99, 1); !errors.Is(err, ErrUnknownGroup) {
		t.Errorf("AckEvents(99, 1) = %v, want ErrUnknownGroup", err)
	}
	for id, s := range c.stores {
		eventually(t, fmt.Sprintf("node %d sees the acks", id), func() error {
			events, acked := s.PendingEvents(group, 0)
			if acked != 1 || !slices.Equal(seqs(events), []uint64{2}) {
				return fmt.Errorf("group %d: pending %v, acked %d; want [2], 1", group, seqs(events), acked)
			}
			st, ok := s.Outbox(ClusterGroup)
			if !ok || st != (OutboxStatus{Pending: 0, LastSeq: 2, Acked: 2}) {
				return fmt.Errorf("cluster outbox = %+v, %t", st, ok)
			}
			return nil
		})
	}
}

// Publishers wait on OutboxChanged from any number of goroutines; a wait
// taken before an append is woken by it.
func TestStore_OutboxChanged_wakesEveryWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFeed()
		s := &Store{feed: f}
		woken := make(chan int, 3)
		for i := range 3 {
			ch := s.OutboxChanged()
			go func() {
				<-ch
				woken <- i
			}()
		}
		synctest.Wait()
		if len(woken) != 0 {
			t.Fatalf("%d waiters woke before anything happened", len(woken))
		}
		f.outbox.fire()
		synctest.Wait()
		if len(woken) != 3 {
			t.Errorf("%d of 3 waiters woke after fire", len(woken))
		}
		select {
		case <-s.OutboxChanged():
			t.Errorf("a wait taken after fire is already closed, want it open until the next fire")
		default:
		}
	})
}

// TestOutbox_nodeEventsOncePerOutage: the cluster group's outbox keeps a
// node_down only for a node not already down and a node_up only for one
// that is, however many nodes and controllers report the outage, and says
// which nodes are down; the partition groups' outboxes keep what they get.
func TestOutbox_nodeEventsOncePerOutage(t *testing.T) {
	d := bootedCluster(t, 1)
	var types []string
	for _, e := range []Event{
		{Type: EventNodeDown, Node: 2}, {Type: EventNodeDown, Node: 2}, // the recorder and a controller
		{Type: EventNodeUp, Node: 3}, // never down
		{Type: EventNodeDown, Node: 3},
		{Type: EventNodeUp, Node: 2}, {Type: EventNodeUp, Node: 2},
		{Type: EventPolicyLoaded, Policy: "p"},
		{Type: EventNodeDown, Node: 2},
	} {
		d.do(kindAppendEvents, appendEventsCmd{Events: []Event{e}})
	}
	for _, e := range d.outbox().Events {
		types = append(types, fmt.Sprintf("%s %d", e.Type, e.Node))
	}
	want := []string{"node_down 2", "node_down 3", "node_up 2", "policy_loaded 0", "node_down 2"}
	if !slices.Equal(types, want) {
		t.Errorf("events %q, want %q", types, want)
	}
	if down := d.outbox().Down; !slices.Equal(down, []uint64{2, 3}) {
		t.Errorf("Down = %v, want [2 3]", down)
	}

	p := newPartitionDriver(t)
	p.do(kindAppendEvents, appendEventsCmd{Events: []Event{{Type: EventNodeDown, Node: 2}, {Type: EventNodeDown, Node: 2}}})
	if n := len(p.outbox().Events); n != 2 {
		t.Errorf("a partition group's outbox kept %d of 2 events", n)
	}
}

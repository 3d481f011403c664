package sdk

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/reeve-edge/reeve/wasm/abi"
)

// testBatch has every kind of node and replica the format can carry.
func testBatch() *abi.Batch {
	return &abi.Batch{
		Nodes: []abi.Node{
			{ID: 1, HeartbeatAgeMs: 0, Labels: []abi.Label{{Key: "power", Value: "battery"}, {Key: "site", Value: "north"}}},
			{ID: 2, HeartbeatAgeMs: 1500, Labels: []abi.Label{{Key: "power", Value: "mains"}}},
			{ID: 3, HeartbeatAgeMs: abi.NeverHeard},
			{ID: 1 << 40, HeartbeatAgeMs: 7},
		},
		Partitions: []abi.Partition{
			{Topic: "orders", Partition: 0, Reason: abi.ReasonLeaderTimeout, Leader: 1, LeaderEpoch: 4, Replicas: []abi.Replica{
				{Node: 0, Alive: false, InISR: true, LogEndOffset: 100},
				{Node: 1, Alive: true, InISR: true, LogEndOffset: 99},
				{Node: 2, Alive: true, InISR: false, LogEndOffset: -1},
			}},
			{Topic: "orders", Partition: 1, Reason: abi.ReasonControlledShutdown, Unclean: true, Leader: 2, LeaderEpoch: 1, Replicas: []abi.Replica{
				{Node: 1, Alive: false, InISR: true, LogEndOffset: 5},
				{Node: 2, Alive: true, InISR: false, LogEndOffset: 3},
			}},
			{Topic: "telemetry", Partition: 7, Reason: abi.ReasonRebalance, Leader: 1 << 40, LeaderEpoch: math.MaxInt32, Replicas: []abi.Replica{
				{Node: 0, Alive: true, InISR: true, LogEndOffset: math.MaxInt64},
				{Node: 3, Alive: true, InISR: true, LogEndOffset: 0},
			}},
			{Topic: "", Partition: -1, Reason: abi.ReasonManual, Replicas: []abi.Replica{{Node: 3, Alive: true, InISR: true, LogEndOffset: -1}}},
			{Topic: "future", Partition: 2, Reason: abi.Reason(9), Leader: 3, Replicas: []abi.Replica{{Node: 2}}},
		},
	}
}

// wantInputs converts a batch the obvious way, as the reference the
// engine's decoder is held to.
func wantInputs(b *abi.Batch) []Input {
	out := make([]Input, 0, len(b.Partitions))
	for _, p := range b.Partitions {
		in := Input{Topic: p.Topic, Partition: p.Partition, LeaderEpoch: p.LeaderEpoch, Leader: p.Leader, Reason: Reason(p.Reason.String()), Unclean: p.Unclean}
		in.Replicas = []Replica{}
		for _, r := range p.Replicas {
			n := b.Nodes[r.Node]
			rep := Replica{ID: n.ID, Alive: r.Alive, InISR: r.InISR, LogEndOffset: r.LogEndOffset, Heard: n.HeartbeatAgeMs != abi.NeverHeard, HeartbeatAge: math.MaxInt64}
			if rep.Heard {
				rep.HeartbeatAge = time.Duration(n.HeartbeatAgeMs) * time.Millisecond
			}
			if len(n.Labels) > 0 {
				rep.Labels = map[string]string{}
				for _, l := range n.Labels {
					rep.Labels[l.Key] = l.Value
				}
			}
			in.Replicas = append(in.Replicas, rep)
		}
		out = append(out, in)
	}
	return out
}

// normalize makes empty replica lists comparable.
func normalize(ins []Input) []Input {
	out := append([]Input{}, ins...)
	for i := range out {
		out[i].Replicas = append([]Replica{}, out[i].Replicas...)
	}
	return out
}

func TestDecodeBatch(t *testing.T) {
	var e engine
	b := testBatch()
	got, err := e.decodeBatch(abi.AppendBatch(nil, b))
	if err != nil {
		t.Fatal(err)
	}
	if want := wantInputs(b); !reflect.DeepEqual(normalize(got), want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", got, want)
	}
	if got[0].Reason != LeaderTimeout || got[1].Reason != ControlledShutdown || got[2].Reason != Rebalance || got[3].Reason != Manual {
		t.Errorf("reasons %q %q %q %q", got[0].Reason, got[1].Reason, got[2].Reason, got[3].Reason)
	}
	if got[4].Reason != "reason(9)" {
		t.Errorf("unknown reason decoded as %q", got[4].Reason)
	}
	if r := got[0].Replicas[2]; r.Heard || r.HeartbeatAge != math.MaxInt64 {
		t.Errorf("never-heard node: Heard %v, HeartbeatAge %v", r.Heard, r.HeartbeatAge)
	}
	// Every replica of one node shares its label map.
	if reflect.ValueOf(got[0].Replicas[0].Labels).UnsafePointer() != reflect.ValueOf(got[2].Replicas[0].Labels).UnsafePointer() {
		t.Error("node 1's replicas have separate label maps")
	}
}

func TestDecodeBatchReusesAcrossCalls(t *testing.T) {
	var e engine
	big := testBatch()
	small := &abi.Batch{Nodes: big.Nodes[:2], Partitions: []abi.Partition{{Topic: "orders", Reason: abi.ReasonManual, Replicas: []abi.Replica{{Node: 1, Alive: true, InISR: true}}}}}
	relabeled := testBatch()
	relabeled.Nodes[0].Labels = []abi.Label{{Key: "power", Value: "mains"}}
	first, err := e.decodeBatch(abi.AppendBatch(nil, big))
	if err != nil {
		t.Fatal(err)
	}
	labels := first[0].Replicas[0].Labels
	topic := first[0].Topic
	for i, b := range []*abi.Batch{small, big, relabeled, big} {
		got, err := e.decodeBatch(abi.AppendBatch(nil, b))
		if err != nil {
			t.Fatal(err)
		}
		if want := wantInputs(b); !reflect.DeepEqual(normalize(got), want) {
			t.Errorf("batch %d decoded\n%+v\nwant\n%+v", i, got, want)
		}
		if unsafe.StringData(got[0].Topic) != unsafe.StringData(topic) {
			t.Errorf("batch %d: topic %q not interned", i, got[0].Topic)
		}
		if b == big && i == 1 && reflect.ValueOf(got[0].Replicas[0].Labels).UnsafePointer() != reflect.ValueOf(labels).UnsafePointer() {
			t.Errorf("batch %d: unchanged labels were rebuilt", i)
		}
	}
}

func TestDecodeBatchMalformed(t *testing.T) {
	good := abi.AppendBatch(nil, testBatch())
	with := func(b []byte, at int, v ...byte) []byte {
		b = slices.Clone(b)
		copy(b[at:], v)
		return b
	}
	oneReplica := abi.AppendBatch(nil, &abi.Batch{Nodes: []abi.Node{{ID: 1}}, Partitions: []abi.Partition{{Topic: "t", Replicas: []abi.Replica{{Node: 0}}}}})
	badNode := abi.AppendBatch(nil, &abi.Batch{Nodes: []abi.Node{{ID: 1}}, Partitions: []abi.Partition{{Topic: "t", Replicas: []abi.Replica{{Node: 1}}}}})
	// Two partitions promised, and the first's replicas take the room the
	// second needs.
	crowded := abi.AppendBatch(nil, &abi.Batch{Nodes: []abi.Node{{ID: 1}}, Partitions: []abi.Partition{{Topic: "t", Replicas: make([]abi.Replica, 6)}}})
	crowded[10] = 2  // the partition count, after the versions, the header's length and the node count
	const node0 = 14 // the first node's length, after the versions and the header
	for name, data := range map[string][]byte{
		"empty":                   nil,
		"ABI 1":                   with(good, 0, 1),
		"major 3":                 with(good, 0, 3),
		"short header":            with(good, 4, 7),
		"header past the end":     good[:12],
		"truncated":               good[:len(good)-1],
		"node index":              badNode,
		"lying count":             {2, 0, 0, 0, 8, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0},
		"only a version":          {2, 0},
		"crowded":                 crowded,
		"node shorter":            with(good, node0, 13, 0, 0, 0),
		"node past the end":       with(good, node0, 0xff, 0xff, 0, 0),
		"labels past the node":    with(oneReplica, node0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0),
		"partition shorter":       with(oneReplica, node0+18, 21, 0, 0, 0),
		"topic past the record":   with(oneReplica, node0+18+4, 0xff, 0),
		"replica shorter":         with(oneReplica, len(oneReplica)-15, 12),
		"replica past the record": with(oneReplica, len(oneReplica)-15, 14),
	} {
		var e engine
		if _, err := e.decodeBatch(data); !errors.Is(err, abi.ErrMalformed) {
			t.Errorf("%s: error %v, want ErrMalformed", name, err)
		}
		if _, err := abi.DecodeBatch(data); err == nil {
			t.Errorf("%s: abi.DecodeBatch accepts it", name)
		}
	}
}

// minor1 is what a host of minor 1 might add to every record.
var minor1 = abi.Extension{
	Minor:     1,
	Header:    []byte{9, 9, 9, 9},
	Node:      []byte{1, 2, 3, 4, 5, 6, 7, 8},
	Partition: []byte{0xaa, 0xbb},
	Replica:   []byte{0xcc, 0xdd, 0xee, 0xff},
	Trailer:   []byte{0x42},
}

// TestDecodeBatchLaterMinor decodes a batch of a later minor, whose
// records carry fields this SDK does not know, as the batch without them;
// and a node whose later fields change from batch to batch keeps its
// label map.
func TestDecodeBatchLaterMinor(t *testing.T) {
	var e engine
	b := testBatch()
	got, err := e.decodeBatch(abi.AppendBatchExtended(nil, b, minor1))
	if err != nil {
		t.Fatal(err)
	}
	if want := wantInputs(b); !reflect.DeepEqual(normalize(got), want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", got, want)
	}
	labels := got[0].Replicas[0].Labels
	ext := minor1
	ext.Node = []byte{8, 7, 6, 5, 4, 3, 2, 1}
	got, err = e.decodeBatch(abi.AppendBatchExtended(nil, b, ext))
	if err != nil {
		t.Fatal(err)
	}
	if reflect.ValueOf(got[0].Replicas[0].Labels).UnsafePointer() != reflect.ValueOf(labels).UnsafePointer() {
		t.Error("labels were rebuilt when only a later minor's node field changed")
	}
}

// TestDecodeBatchUnknownFlagBits sets every flag bit minor 0 does not
// define; they are ignored.
func TestDecodeBatchUnknownFlagBits(t *testing.T) {
	b := &abi.Batch{Nodes: []abi.Node{{ID: 1}}, Partitions: []abi.Partition{{Topic: "t", Unclean: true, Replicas: []abi.Replica{{Node: 0, Alive: true}}}}}
	data := abi.AppendBatch(nil, b)
	data[14+18+4+3+4+1] |= 0xfe // the partition's flags: after the node, the partition's length, topic, partition and reason
	data[len(data)-9] |= 0xfc   // the replica's, before its log-end offset
	var e engine
	got, err := e.decodeBatch(data)
	if err != nil {
		t.Fatal(err)
	}
	if want := wantInputs(b); !reflect.DeepEqual(normalize(got), want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", got, want)
	}
}

// FuzzDecodeBatch holds the engine's decoder to abi.DecodeBatch: it must
// accept exactly the same messages and read the same values.
func FuzzDecodeBatch(f *testing.F) {
	f.Add(abi.AppendBatch(nil, testBatch()))
	f.Add(abi.AppendBatchExtended(nil, testBatch(), minor1))
	f.Add(abi.AppendBatch(nil, &abi.Batch{}))
	f.Add(abi.AppendBatch(nil, &abi.Batch{Partitions: []abi.Partition{{Topic: "a"}}}))
	f.Add(abi.AppendBatch(nil, &abi.Batch{Partitions: []abi.Partition{{}}}))
	f.Add(abi.AppendBatch(nil, &abi.Batch{Nodes: []abi.Node{{ID: 1}}, Partitions: []abi.Partition{{Topic: "t", Replicas: []abi.Replica{{Node: 1}}}}}))
	f.Add([]byte{2, 0, 0, 0, 8, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	var e engine // reused, as in a module
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := e.decodeBatch(data)
		b, abiErr := abi.DecodeBatch(data)
		if (err == nil) != (abiErr == nil) {
			t.Fatalf("engine error %v, abi error %v", err, abiErr)
		}
		if err != nil {
			return
		}
		if want := wantInputs(b); !reflect.DeepEqual(normalize(got), want) {
			t.Fatalf("decoded\n%+v\nwant\n%+v", got, want)
		}
	})
}

func TestDecide(t *testing.T) {
	e := engine{handler: FirstISR}
	out, err := e.decide(abi.AppendBatch(nil, testBatch()))
	if err != nil {
		t.Fatal(err)
	}
	got, err := abi.DecodeDecisions(out, 5)
	if err != nil {
		t.Fatal(err)
	}
	want := []abi.Decision{
		{Kind: abi.DecideLeader, Leader: 2, Reason: "first in-sync replica alive"},
		{Kind: abi.DecideLeader, Leader: 3, Reason: "unclean: alive but out of sync"},
		{Kind: abi.DecideLeader, Leader: 1, Reason: "first in-sync replica alive"},
		{Kind: abi.DecideLeader, Leader: 1 << 40, Reason: "first in-sync replica alive"},
		{Kind: abi.DecideNone, Reason: "no live in-sync replica"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decisions\n%+v\nwant\n%+v", got, want)
	}
}

func TestDecideEncodesLikeABI(t *testing.T) {
	long := strings.Repeat("é", abi.MaxString) // cut mid-rune, as abi cuts it
	ds := []Decision{Elect(7, "why"), Keep(""), Offline("none"), Elect(math.MaxUint64, long)}
	var abiDs []abi.Decision
	for _, d := range ds {
		abiDs = append(abiDs, abi.Decision{Kind: abi.DecisionKind(d.Kind), Leader: d.Leader, Reason: d.Reason})
	}
	b := &abi.Batch{Nodes: []abi.Node{{ID: 1}}}
	for range ds {
		b.Partitions = append(b.Partitions, abi.Partition{Topic: "t", Replicas: []abi.Replica{{Node: 0}}})
	}
	i := 0
	e := engine{handler: func(Input) Decision { i++; return ds[i-1] }}
	out, err := e.decide(abi.AppendBatch(nil, b))
	if err != nil {
		t.Fatal(err)
	}
	if want := abi.AppendDecisions(nil, abiDs); !bytes.Equal(out, want) {
		t.Errorf("encoded %d bytes, abi.AppendDecisions %d; they differ", len(out), len(want))
	}
}

func TestDecideRecoversPanic(t *testing.T) {
	calls := 0
	e := engine{handler: func(in Input) Decision {
		calls++
		if in.Topic == "telemetry" {
			var m map[string]int
			m["boom"]++ // a runtime error, not just a panic call
		}
		return Keep("")
	}}
	data := abi.AppendBatch(nil, testBatch())
	_, err := e.decide(data)
	if err == nil || !strings.Contains(err.Error(), "handler panicked deciding telemetry-7") || !strings.Contains(err.Error(), "nil map") {
		t.Fatalf("error %v, want the panic with its partition", err)
	}
	// The engine is intact: a handler that no longer panics answers.
	e.handler = func(Input) Decision { return Keep("") }
	out, err := e.decide(data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := abi.DecodeDecisions(out, 5); err != nil {
		t.Error(err)
	}
}

func TestDecideFailures(t *testing.T) {
	data := abi.AppendBatch(nil, testBatch())
	e := engine{}
	if _, err := e.decide(data); err == nil || !strings.Contains(err.Error(), "sdk.Handle") {
		t.Errorf("without a handler: error %v", err)
	}
	e.handler = func(Input) Decision { return Decision{Kind: 3} }
	if _, err := e.decide(data); err == nil || !strings.Contains(err.Error(), "unknown decision kind 3") {
		t.Errorf("unknown kind: error %v", err)
	}
	e.handler = FirstISR
	if _, err := e.decide(data[:10]); !errors.Is(err, abi.ErrMalformed) {
		t.Errorf("truncated batch: error %v", err)
	}
}

func TestHandlerCannotClobberNextPartition(t *testing.T) {
	var seen [][]uint64
	e := engine{handler: func(in Input) Decision {
		var ids []uint64
		for _, r := range in.Replicas {
			ids = append(ids, r.ID)
		}
		seen = append(seen, ids)
		_ = append(in.Replicas, Replica{ID: 99})
		return Keep("")
	}}
	if _, err := e.decide(abi.AppendBatch(nil, testBatch())); err != nil {
		t.Fatal(err)
	}
	want := [][]uint64{{1, 2, 3}, {2, 3}, {1, 1 << 40}, {1 << 40}, {3}}
	if !reflect.DeepEqual(seen, want) {
		t.Errorf("replicas seen %v, want %v", seen, want)
	}
}

func TestDecideAllocatesNothingInSteadyState(t *testing.T) {
	e := engine{handler: FirstISR}
	b := testBatch()
	b.Partitions = b.Partitions[:4] // the unknown reason's name is made on demand
	data := abi.AppendBatch(nil, b)
	if _, err := e.decide(data); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { e.decide(data) }); n != 0 {
		t.Errorf("%v allocations per call", n)
	}
}

func TestAllocAndInputAt(t *testing.T) {
	var e engine
	if _, err := e.inputAt(0x1000, 3); err == nil {
		t.Error("input accepted before any alloc")
	}
	buf := e.alloc(100)
	if len(buf) < 100 {
		t.Fatalf("alloc(100) gave %d bytes", len(buf))
	}
	if again := e.alloc(50); unsafe.SliceData(again) != unsafe.SliceData(buf) {
		t.Error("a smaller alloc did not reuse the buffer")
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	copy(buf[10:], "hello")
	if got, err := e.inputAt(base+10, 5); err != nil || string(got) != "hello" {
		t.Errorf("inputAt: %q, %v", got, err)
	}
	for _, c := range []struct {
		ptr uintptr
		n   int
	}{{base - 1, 1}, {base, len(buf) + 1}, {base + uintptr(len(buf)), 1}, {base, -1}} {
		if _, err := e.inputAt(c.ptr, c.n); err == nil {
			t.Errorf("inputAt(base%+d, %d) accepted", int(c.ptr-base), c.n)
		}
	}
	if got, err := e.inputAt(0, 0); err != nil || got != nil {
		t.Errorf("empty input: %v, %v", got, err)
	}
	if e.alloc(-1) != nil {
		t.Error("alloc(-1) gave a buffer")
	}
	if b := e.alloc(0); len(b) == 0 {
		t.Error("alloc(0) gave no buffer to point at")
	}
}

func TestInit(t *testing.T) {
	var got map[string]string
	e := engine{initFunc: func(s map[string]string) error { got = s; return nil }}
	data := abi.AppendSettings(nil, []abi.Label{{Key: "label", Value: "power"}, {Key: "value", Value: "mains"}})
	if err := e.init(data); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"label": "power", "value": "mains"}; !reflect.DeepEqual(got, want) {
		t.Errorf("settings %v, want %v", got, want)
	}
	if err := e.init(nil); err != nil || len(got) != 0 || got == nil {
		t.Errorf("no settings: %v, %v", got, err)
	}
	if err := e.init(data[:5]); !errors.Is(err, abi.ErrMalformed) {
		t.Errorf("truncated settings: %v", err)
	}
	e.initFunc = func(map[string]string) error { return errors.New("label is required") }
	if err := e.init(data); err == nil || err.Error() != "settings refused: label is required" {
		t.Errorf("refusing init: %v", err)
	}
	e.initFunc = func(map[string]string) error { panic("oops") }
	if err := e.init(data); err == nil || !strings.Contains(err.Error(), "init panicked: oops") {
		t.Errorf("panicking init: %v", err)
	}
	e.initFunc = nil
	if err := e.init(data); err != nil {
		t.Errorf("without an init function: %v", err)
	}
}

func BenchmarkDecide(b *testing.B) {
	batch := &abi.Batch{Nodes: testBatch().Nodes[:3]}
	for i := range 10000 {
		batch.Partitions = append(batch.Partitions, abi.Partition{Topic: "topic-" + string(rune('a'+i/1000)), Partition: int32(i), Reason: abi.ReasonLeaderTimeout, Leader: 1, Replicas: []abi.Replica{
			{Node: 0, InISR: true}, {Node: 1, Alive: true, InISR: true}, {Node: 2, Alive: true},
		}})
	}
	data := abi.AppendBatch(nil, batch)
	e := engine{handler: FirstISR}
	for b.Loop() {
		if _, err := e.decide(data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch.Partitions)), "ns/decision")
}

func TestEqualBytes(t *testing.T) {
	for n := range 41 {
		a := make([]byte, n)
		for i := range a {
			a[i] = byte('a' + i%26)
		}
		if !equalBytes(a, slices.Clone(a)) {
			t.Errorf("equalBytes(%q, itself) = false", a)
		}
		for i := range n {
			b := slices.Clone(a)
			b[i] ^= 0x80
			if equalBytes(a, b) {
				t.Errorf("equalBytes(%q, %q) = true", a, b)
			}
		}
		if n > 0 && equalBytes(a, a[:n-1]) {
			t.Errorf("equalBytes(%q, %q) = true", a, a[:n-1])
		}
	}
}

// TestDecodeBatchTopics decodes topic names of every length up to 40,
// long names that differ only between their first and last 8 bytes, and
// more names than the table keeps, batch after batch: every name reads
// back as sent, and a name seen before is the same string.
func TestDecodeBatchTopics(t *testing.T) {
	var names []string
	for n := range 41 {
		names = append(names, strings.Repeat("x", n))
	}
	for i := range 300 {
		names = append(names, fmt.Sprintf("sensors.site-%03d.temperature", i), fmt.Sprintf("t%d", i))
	}
	var e engine
	seen := map[string]string{}
	for round := range 3 {
		for start := 0; start < len(names); start += 97 {
			b := &abi.Batch{Nodes: []abi.Node{{ID: 1}}}
			for _, name := range names[start:min(start+97, len(names))] {
				b.Partitions = append(b.Partitions, abi.Partition{Topic: name, Replicas: []abi.Replica{{Node: 0}}})
			}
			got, err := e.decodeBatch(abi.AppendBatch(nil, b))
			if err != nil {
				t.Fatal(err)
			}
			for i, in := range got {
				if want := b.Partitions[i].Topic; in.Topic != want {
					t.Fatalf("round %d: topic %q decoded as %q", round, want, in.Topic)
				}
				if s, ok := seen[in.Topic]; ok && unsafe.StringData(s) != unsafe.StringData(in.Topic) {
					t.Errorf("round %d: topic %q not interned", round, in.Topic)
				}
				seen[in.Topic] = in.Topic
			}
		}
	}
	// Past maxTopics names the table starts again: names still decode.
	b := &abi.Batch{Nodes: []abi.Node{{ID: 1}}}
	for i := range maxTopics + 10 {
		b.Partitions = append(b.Partitions, abi.Partition{Topic: fmt.Sprintf("many-%d", i), Replicas: []abi.Replica{{Node: 0}}})
	}
	got, err := e.decodeBatch(abi.AppendBatch(nil, b))
	if err != nil {
		t.Fatal(err)
	}
	for i, in := range got {
		if in.Topic != b.Partitions[i].Topic {
			t.Fatalf("topic %q decoded as %q", b.Partitions[i].Topic, in.Topic)
		}
	}
	if e.topics.count > maxTopics {
		t.Errorf("%d topics interned, more than %d", e.topics.count, maxTopics)
	}
}

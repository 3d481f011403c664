package abi

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func sampleBatch() *Batch {
	return &Batch{
		Nodes: []Node{
			{ID: 1, HeartbeatAgeMs: 12000, Labels: []Label{{Key: "power", Value: "battery"}}},
			{ID: 1<<64 - 1, HeartbeatAgeMs: NeverHeard},
		},
		Partitions: []Partition{
			{Topic: "line1.temp", Partition: 3, Reason: ReasonLeaderTimeout, Unclean: true, Leader: 1, LeaderEpoch: 9,
				Replicas: []Replica{{Node: 0, InISR: true, LogEndOffset: 120}, {Node: 1, Alive: true, LogEndOffset: -1}}},
			{Topic: "x", Partition: 0, Reason: ReasonManual, Replicas: []Replica{}},
		},
	}
}

// minor1 is what a host of minor 1 might add: a node's free disk (u64),
// a partition's high watermark (i64) and a replica's lag in milliseconds
// (u32), plus a header field and a table after the partitions.
var minor1 = Extension{
	Minor:     1,
	Header:    []byte{7, 0, 0, 0},
	Node:      binary.LittleEndian.AppendUint64(nil, 512<<30),
	Partition: binary.LittleEndian.AppendUint64(nil, 118),
	Replica:   binary.LittleEndian.AppendUint32(nil, 250),
	Trailer:   []byte{1, 0, 0, 0, 0xee},
}

// unhex decodes hex written with spaces between bytes and a comment
// after # on each line.
func unhex(t *testing.T, s string) []byte {
	t.Helper()
	var digits strings.Builder
	for _, line := range strings.Split(s, "\n") {
		line, _, _ = strings.Cut(line, "#")
		digits.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(digits.String())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAppendBatch_layout pins the layout docs/policy-abi.md gives, byte by
// byte.
func TestAppendBatch_layout(t *testing.T) {
	b := &Batch{
		Nodes: []Node{{ID: 1, HeartbeatAgeMs: 2, Labels: []Label{{Key: "a", Value: "b"}}}},
		Partitions: []Partition{{Topic: "t", Partition: 3, Reason: ReasonControlledShutdown, Unclean: true, Leader: 1, LeaderEpoch: 4,
			Replicas: []Replica{{Node: 0, Alive: true, InISR: true, LogEndOffset: 5}}}},
	}
	want := unhex(t, `
		0200 0000                    # major 2, minor 0
		0800 01000000 01000000       # header: length 8, 1 node, 1 partition
		14000000                     # node: length 20
		  0100000000000000 02000000  #   id 1, heartbeat age 2 ms
		  0100 0100 61 0100 62       #   1 label: "a" = "b"
		26000000                     # partition: length 38
		  0100 74 03000000           #   topic "t", partition 3
		  01 01                      #   controlled_shutdown, unclean
		  0100000000000000 04000000  #   leader 1, leader epoch 4
		  0100                       #   1 replica
		  0d00                       #   replica: length 13
		    00000000 03              #     node index 0, alive and in the ISR
		    0500000000000000         #     log-end offset 5
	`)
	if got := AppendBatch(nil, b); !bytes.Equal(got, want) {
		t.Errorf("AppendBatch =\n%x\nwant\n%x", got, want)
	}
}

// TestBatch_roundTrip checks encode then decode gives the batch back.
func TestBatch_roundTrip(t *testing.T) {
	in := sampleBatch()
	got, err := DecodeBatch(AppendBatch(nil, in))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, in) {
		t.Errorf("DecodeBatch(AppendBatch(b)) = %+v, want %+v", got, in)
	}
}

// TestDecodeBatch_laterMinor is the extension path: a batch from a host of
// a later minor, with a field appended to every record and bytes after the
// last partition, reads as the batch without them.
func TestDecodeBatch_laterMinor(t *testing.T) {
	in := sampleBatch()
	data := AppendBatchExtended(nil, in, minor1)
	if len(data) <= len(AppendBatch(nil, in)) {
		t.Fatal("the extension added nothing")
	}
	got, err := DecodeBatch(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, in) {
		t.Errorf("DecodeBatch(minor 1) = %+v, want %+v", got, in)
	}
}

// TestDecodeBatch_unknownFlagBitsIgnored sets every flag bit minor 0 does
// not define: a later minor may, so a reader ignores them.
func TestDecodeBatch_unknownFlagBitsIgnored(t *testing.T) {
	b := &Batch{Nodes: []Node{{ID: 1}}, Partitions: []Partition{{Topic: "t", Unclean: true, Replicas: []Replica{{Node: 0, InISR: true}}}}}
	data := AppendBatch(nil, b)
	// The partition's flags follow its length, topic, partition and
	// reason; the replica's its length and node index.
	part := 2 + 2 + 2 + 8 + 4 + 14
	data[part+4+3+4+1] |= 0xfe
	data[len(data)-8-1] |= 0xfc
	got, err := DecodeBatch(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, b) {
		t.Errorf("DecodeBatch(unknown flags) = %+v, want %+v", got, b)
	}
}

// TestDecodeBatch_refuses lists what a reader of minor 0 refuses.
func TestDecodeBatch_refuses(t *testing.T) {
	good := AppendBatch(nil, sampleBatch())
	with := func(at int, v ...byte) []byte {
		b := bytes.Clone(good)
		copy(b[at:], v)
		return b
	}
	const node0 = 2 + 2 + 2 + 8 // after the versions and the header
	node0Len := int(binary.LittleEndian.Uint32(good[node0:]))
	node1 := node0 + 4 + node0Len
	part0 := node1 + 4 + 14
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "truncated"},
		{"only a major", []byte{2, 0}, "truncated"},
		{"ABI 1", AppendBatch(nil, &Batch{})[:2:2], ""},
		{"major 1", with(0, 1), "batch of policy ABI 1.0"},
		{"major 3", with(0, 3, 0, 5), "batch of policy ABI 3.5"},
		{"short header", with(4, 7), "batch header at byte 6 is 7 bytes long, shorter"},
		{"header past the end", append(good[:4:4], 9, 0, 1, 0, 0, 0, 0, 0, 0, 0), "9 bytes long; 8 are left"},
		{"lying node count", append(good[:4:4], 8, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0), "4294967295 nodes"},
		{"node count past the limit", append(good[:4:4], 8, 0, 1, 0, 1, 0, 0, 0, 0, 0), "65537 nodes"},
		{"partitions past the bytes", with(10, 0, 0, 1), "65536 partitions exceed"},
		{"node shorter than its fields", with(node0, 13, 0, 0, 0), "node at byte 18 is 13 bytes long, shorter"},
		{"node past the end", with(node0, 0xff, 0xff, 0, 0), "node at byte 18 is 65535 bytes long"},
		{"labels past the node", with(node1, 15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0), "node 1: malformed"},
		{"topic past the partition", with(part0+4, 0xff, 0), "partition 0: malformed"},
		{"partition shorter than its fields", with(part0, 21, 0, 0, 0), "shorter than its fields (22)"},
		{"truncated", good[:len(good)-1], "partition 1"},
		{"replica node index", AppendBatch(nil, &Batch{Nodes: []Node{{ID: 1}}, Partitions: []Partition{{Topic: "t", Replicas: []Replica{{Node: 1}}}}}), "replica node index 1 of 1 nodes"},
		{"replica shorter than its fields", func() []byte {
			b := AppendBatch(nil, &Batch{Nodes: []Node{{ID: 1}}, Partitions: []Partition{{Topic: "t", Replicas: []Replica{{}}}}})
			b[len(b)-15] = 12
			return b
		}(), "replica at byte"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeBatch(tc.data)
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("DecodeBatch = %v, want ErrMalformed with %q", err, tc.want)
			}
		})
	}
}

// TestDecodeBatch_edges decodes the smallest batches: nothing, and one
// partition with an empty topic and no replicas.
func TestDecodeBatch_edges(t *testing.T) {
	for _, b := range []*Batch{
		{Nodes: []Node{}, Partitions: []Partition{}},
		{Nodes: []Node{}, Partitions: []Partition{{Replicas: []Replica{}}}},
	} {
		got, err := DecodeBatch(AppendBatch(nil, b))
		if err != nil || !reflect.DeepEqual(got, b) {
			t.Errorf("DecodeBatch(AppendBatch(%+v)) = %+v, %v", b, got, err)
		}
	}
}

// appendDecisionsMinor1 encodes answers as a module of minor 1 that
// appends a field to the header and to each decision might.
func appendDecisionsMinor1(ds []Decision) []byte {
	le := binary.LittleEndian
	out := le.AppendUint16(nil, Major)
	out = le.AppendUint16(out, 1)
	out = le.AppendUint16(out, 4+2)
	out = le.AppendUint32(out, uint32(len(ds)))
	out = append(out, 0xab, 0xcd)
	for _, d := range ds {
		out = le.AppendUint32(out, uint32(1+8+2+len(d.Reason)+4))
		out = append(out, byte(d.Kind))
		out = le.AppendUint64(out, d.Leader)
		out = appendString(out, d.Reason)
		out = le.AppendUint32(out, 0xfeedface)
	}
	return out
}

// TestDecisions_roundTrip checks answers survive encoding, and that a
// count other than the partitions asked about is refused, as are unknown
// kinds and other majors.
func TestDecisions_roundTrip(t *testing.T) {
	ds := []Decision{{Kind: DecideLeader, Leader: 2, Reason: "first in-sync"}, {Kind: DecideKeep, Reason: "first in-sync"}, {Kind: DecideNone}}
	data := AppendDecisions(nil, ds)
	got, err := DecodeDecisions(data, 3)
	if err != nil || !reflect.DeepEqual(got, ds) {
		t.Errorf("DecodeDecisions = %+v, %v; want %+v", got, err, ds)
	}
	if got, err := DecodeDecisions(appendDecisionsMinor1(ds), 3); err != nil || !reflect.DeepEqual(got, ds) {
		t.Errorf("DecodeDecisions(minor 1) = %+v, %v; want %+v", got, err, ds)
	}
	if _, err := DecodeDecisions(data, 2); !errors.Is(err, ErrMalformed) {
		t.Errorf("DecodeDecisions(3 answers, want 2) = %v, want ErrMalformed", err)
	}
	const kind0 = 2 + 2 + 2 + 4 + 4 // the first decision's kind
	for name, bad := range map[string][]byte{
		"unknown kind": func() []byte { b := bytes.Clone(data); b[kind0] = 7; return b }(),
		"ABI 1":        func() []byte { b := bytes.Clone(data); b[0] = 1; return b }(),
		"short":        func() []byte { b := bytes.Clone(data); b[kind0-4] = 10; return b }(),
		"truncated":    data[:len(data)-1],
		"lying count":  func() []byte { b := bytes.Clone(data); b[6] = 0xff; b[8] = 0xff; return b }(),
	} {
		if _, err := DecodeDecisions(bad, 3); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeDecisions(%s) = %v, want ErrMalformed", name, err)
		}
	}
}

// FuzzDecodeBatch: any input decodes or fails with ErrMalformed, never
// panics, and what decodes re-encodes to a batch that decodes the same and
// encodes to the same bytes again.
func FuzzDecodeBatch(f *testing.F) {
	f.Add(AppendBatch(nil, sampleBatch()))
	f.Add(AppendBatchExtended(nil, sampleBatch(), minor1))
	f.Add(AppendBatch(nil, &Batch{Partitions: []Partition{{}}}))
	f.Add([]byte{2, 0, 0, 0, 8, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Add([]byte{1, 0, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := DecodeBatch(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		enc := AppendBatch(nil, b)
		again, err := DecodeBatch(enc)
		if err != nil {
			t.Fatalf("re-encoded batch does not decode: %v", err)
		}
		if !reflect.DeepEqual(again, b) {
			t.Fatalf("re-decoded\n%+v\nwant\n%+v", again, b)
		}
		if enc2 := AppendBatch(nil, again); !bytes.Equal(enc2, enc) {
			t.Fatalf("re-encoding differs:\n%x\n%x", enc, enc2)
		}
	})
}

// FuzzDecodeDecisions: any input decodes or fails with ErrMalformed, and
// what decodes survives encoding.
func FuzzDecodeDecisions(f *testing.F) {
	f.Add(AppendDecisions(nil, []Decision{{Kind: DecideLeader, Leader: 2, Reason: "x"}}), 1)
	f.Add(appendDecisionsMinor1([]Decision{{Kind: DecideKeep, Reason: "y"}, {}}), 2)
	f.Fuzz(func(t *testing.T, data []byte, want int) {
		ds, err := DecodeDecisions(data, want)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		again, err := DecodeDecisions(AppendDecisions(nil, ds), want)
		if err != nil || !reflect.DeepEqual(again, ds) {
			t.Fatalf("re-decoded %+v, %v; want %+v", again, err, ds)
		}
	})
}

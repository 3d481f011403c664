package abi

import (
	"bytes"
	"errors"
	"reflect"
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

// TestDecisions_roundTrip checks answers survive encoding, and that a
// count other than the partitions asked about is refused.
func TestDecisions_roundTrip(t *testing.T) {
	ds := []Decision{{Kind: DecideLeader, Leader: 2, Reason: "first in-sync"}, {Kind: DecideKeep, Reason: "first in-sync"}, {Kind: DecideNone}}
	data := AppendDecisions(nil, ds)
	got, err := DecodeDecisions(data, 3)
	if err != nil || !reflect.DeepEqual(got, ds) {
		t.Errorf("DecodeDecisions = %+v, %v; want %+v", got, err, ds)
	}
	if _, err := DecodeDecisions(data, 2); !errors.Is(err, ErrMalformed) {
		t.Errorf("DecodeDecisions(3 answers, want 2) = %v, want ErrMalformed", err)
	}
	bad := append([]byte(nil), data...)
	bad[6] = 7 // the first decision's kind
	if _, err := DecodeDecisions(bad, 3); !errors.Is(err, ErrMalformed) {
		t.Errorf("DecodeDecisions(unknown kind) = %v, want ErrMalformed", err)
	}
}

// FuzzDecodeBatch: any input decodes or fails with ErrMalformed, never
// panics, and what decodes re-encodes to the same bytes.
func FuzzDecodeBatch(f *testing.F) {
	f.Add(AppendBatch(nil, sampleBatch()))
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
		if again := AppendBatch(nil, b); !bytes.Equal(again, data) {
			t.Fatalf("re-encoding differs:\n%x\n%x", data, again)
		}
	})
}

// FuzzDecodeDecisions: any input decodes or fails with ErrMalformed.
func FuzzDecodeDecisions(f *testing.F) {
	f.Add(AppendDecisions(nil, []Decision{{Kind: DecideLeader, Leader: 2, Reason: "x"}}), 1)
	f.Fuzz(func(t *testing.T, data []byte, want int) {
		if _, err := DecodeDecisions(data, want); err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("error %v does not wrap ErrMalformed", err)
		}
	})
}

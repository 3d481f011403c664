package admin

import (
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"testing"

	"github.com/reeve-edge/reeve/raft"
)

func TestParsePartitionsQuery(t *testing.T) {
	tests := []struct {
		query string
		want  partitionsQuery
	}{
		{"", partitionsQuery{Offsets: true}},
		{"stale=true", partitionsQuery{Stale: true, Offsets: true}},
		{"stale=1", partitionsQuery{Offsets: true}}, // only "true" skips the barrier
		{"offsets=false", partitionsQuery{}},
		{"offsets=0", partitionsQuery{Offsets: true}}, // only "false" skips the question
		{"topic=line1.temp&stale=true&offsets=false", partitionsQuery{Topic: "line1.temp", Stale: true}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			if got := parsePartitionsQuery(q); got != tt.want {
				t.Errorf("parsePartitionsQuery(%q) = %+v, want %+v", tt.query, got, tt.want)
			}
		})
	}
}

func TestSelectPartitions(t *testing.T) {
	topic := func(name string, parts ...int32) topicPartitions {
		tp := topicPartitions{Topic: raft.Topic{Name: name, Partitions: int32(len(parts))}}
		for _, p := range parts {
			tp.Partitions = append(tp.Partitions, raft.Partition{Topic: name, Partition: p})
		}
		return tp
	}
	// Out of order on purpose, and a topic whose partitions are not
	// created yet.
	topics := []topicPartitions{topic("b", 2, 0, 1), topic("empty"), topic("a", 1, 0)}
	tests := []struct {
		name, topic string
		want        []string
		wantErr     error
	}{
		{"every topic, by name then partition", "", []string{"a-0", "a-1", "b-0", "b-1", "b-2"}, nil},
		{"?topic keeps one topic, by partition", "b", []string{"b-0", "b-1", "b-2"}, nil},
		{"?topic of a topic without partitions", "empty", nil, nil},
		{"?topic of an unknown topic", "nope", nil, raft.ErrUnknownTopic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts, err := selectPartitions(topics, tt.topic)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("selectPartitions(topics, %q) = %v, want %v", tt.topic, err, tt.wantErr)
			}
			var got []string
			for _, p := range parts {
				got = append(got, fmt.Sprintf("%s-%d", p.Topic, p.Partition))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("selectPartitions(topics, %q) = %v, want %v", tt.topic, got, tt.want)
			}
		})
	}
	if topics[0].Topic.Name != "b" || topics[0].Partitions[0].Partition != 2 {
		t.Errorf("selectPartitions sorted its input: topics[0] = %s-%d, want b-2", topics[0].Topic.Name, topics[0].Partitions[0].Partition)
	}
}

// TestActiveAlive: a replica counts alive only on an active node heard
// within the leader timeout.
func TestActiveAlive(t *testing.T) {
	got := activeAlive(goldenNodes(), map[uint64]heartbeat{1: {Alive: true}, 3: {Alive: true}, 4: {Alive: true}})
	want := map[uint64]bool{1: true, 2: false, 3: false, 4: false} // 2 unheard, 3 joining, 4 removed
	if !reflect.DeepEqual(got, want) {
		t.Errorf("activeAlive(goldenNodes(), heard 1, 3, 4) = %v, want %v", got, want)
	}
}

// TestPartitionsBody_offsetsNotAsked: with ?offsets=false no replica has a
// log end offset or lag, and no partition a max lag.
func TestPartitionsBody_offsetsNotAsked(t *testing.T) {
	got := partitionsBody(partitionsInput{Self: 1, Query: partitionsQuery{Stale: true}, Partitions: goldenPartitions(),
		GroupOf: goldenGroupOf, Alive: map[uint64]bool{1: true, 2: true, 3: true}})
	if got.NodeID != 1 || !got.Stale || got.Offsets || len(got.Partitions) != 3 {
		t.Fatalf("partitionsBody() node, stale, offsets, partitions = %d, %t, %t, %d, want 1, true, false, 3",
			got.NodeID, got.Stale, got.Offsets, len(got.Partitions))
	}
	for _, p := range got.Partitions {
		if p.MaxLag != -1 {
			t.Errorf("partition %d: max lag %d, want -1", p.Partition, p.MaxLag)
		}
		for _, r := range p.ReplicaStates {
			if r.LogEndOffset != -1 || r.Lag != -1 {
				t.Errorf("partition %d, node %d: log end offset, lag = %d, %d, want -1, -1", p.Partition, r.Node, r.LogEndOffset, r.Lag)
			}
		}
	}
}

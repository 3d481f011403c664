package admin

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/reeve-edge/reeve/policy"
	"github.com/reeve-edge/reeve/raft"
)

// statusTopic is a topic named name with offline leaderless partitions
// and then online ones led by node 1, all fully in sync.
func statusTopic(name string, offline, online int) topicPartitions {
	tp := topicPartitions{Topic: raft.Topic{Name: name, Partitions: int32(offline + online)}}
	for i := range offline + online {
		p := raft.Partition{Topic: name, Partition: int32(i), Replicas: []uint64{1}, ISR: []uint64{1}, Leader: 1}
		if i < offline {
			p.Leader = raft.NoLeader
		}
		tp.Partitions = append(tp.Partitions, p)
	}
	return tp
}

// names is topic-from … topic-(to-1).
func names(topic string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s-%d", topic, i))
	}
	return out
}

func TestStatusBody_offlineList(t *testing.T) {
	tests := []struct {
		name                 string
		topics               []topicPartitions
		wantTotal, wantCount int
		wantList             []string
	}{
		{"none offline: no list", []topicPartitions{statusTopic("t", 0, 3)}, 3, 0, nil},
		{"one", []topicPartitions{statusTopic("t", 1, 2)}, 3, 1, []string{"t-0"}},
		{"20 all listed", []topicPartitions{statusTopic("t", 20, 1)}, 21, 20, names("t", 0, 20)},
		{"the 21st counted, not listed", []topicPartitions{statusTopic("t", 21, 1)}, 22, 21, names("t", 0, 20)},
		{"the cap spans topics, in their order", []topicPartitions{statusTopic("a", 15, 0), statusTopic("b", 15, 2)},
			32, 30, append(names("a", 0, 15), names("b", 0, 5)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := statusBody(statusInput{Topics: tt.topics}).Partitions
			if got.Total != tt.wantTotal || got.Offline != tt.wantCount || got.UnderReplicated != 0 {
				t.Errorf("statusBody().Partitions total, offline, under-replicated = %d, %d, %d, want %d, %d, 0",
					got.Total, got.Offline, got.UnderReplicated, tt.wantTotal, tt.wantCount)
			}
			if !reflect.DeepEqual(got.OfflineList, tt.wantList) {
				t.Errorf("statusBody().Partitions.OfflineList = %q, want %q", got.OfflineList, tt.wantList)
			}
		})
	}
}

func TestStatusBody_lastElections(t *testing.T) {
	tests := []struct {
		name          string
		decisions     int
		first, length int // the first election's partition, and how many
	}{
		{"none: an empty list", 0, 0, 0},
		{"fewer than 10: all", 3, 0, 3},
		{"10: all", 10, 0, 10},
		{"12: the last 10, newest last", 12, 2, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var recs []policy.DecisionRecord
			for i := range tt.decisions {
				recs = append(recs, policy.DecisionRecord{Time: goldenTime.Add(time.Duration(i) * time.Second), Topic: "t", Partition: int32(i)})
			}
			got := statusBody(statusInput{Decisions: recs}).Elections
			if got == nil {
				t.Fatalf("statusBody().Elections = nil, want a list (JSON [])")
			}
			var parts []int32
			for _, e := range got {
				parts = append(parts, e.Partition)
			}
			var want []int32
			for i := range tt.length {
				want = append(want, int32(tt.first+i))
			}
			if !reflect.DeepEqual(parts, want) {
				t.Errorf("statusBody() of %d decisions: elections of partitions %v, want %v", tt.decisions, parts, want)
			}
		})
	}
}

// TestStatusBody_summary reads the golden status (its two active nodes) as
// systemd's STATUS= line shows it.
func TestStatusBody_summary(t *testing.T) {
	in := goldenStatusInput()
	in.Nodes = in.Nodes[:2]
	const want = "nodes alive 2/2, leading 1 of 3 partitions, 1 offline, 2 under-replicated"
	if got := statusBody(in).Summary(); got != want {
		t.Errorf("statusBody(goldenStatusInput()).Summary() = %q, want %q", got, want)
	}
}

package history

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// clean is a history that keeps every promise: ten records acknowledged at
// offsets 0-9 of partition 0 and read back, one leader change published
// once, commits that only rise, and a fault the producers rode out with a
// 3 s gap between acknowledgements.
func clean() History {
	var h History
	for i := range 10 {
		ack := at(i * 100)
		if i >= 5 {
			ack = at(3400 + i*100) // after the fault
		}
		v := fmt.Sprintf("v%d", i)
		h.Produces = append(h.Produces, Produce{Value: v, Partition: 0, Invoked: ack.Add(-time.Millisecond), Completed: ack, Outcome: OK, Offset: int64(i)})
		h.Reads = append(h.Reads, Read{Partition: 0, Offset: int64(i), Value: v})
	}
	h.Reads = append(h.Reads, Read{Partition: 0, Offset: 3, Value: "v3"}) // a re-read after a rebalance is fine
	h.Produces = append(h.Produces, Produce{Value: "gave-up", Partition: 0, Invoked: at(450), Completed: at(2000), Outcome: Unknown})
	h.Commits = []Commit{{"g", 0, 3, at(500)}, {"g", 0, 3, at(600)}, {"g", 0, 10, at(5000)}, {"h", 0, 1, at(700)}}
	h.Elections = []Leadership{{Partition: 0, Epoch: 1, Leader: 2, Source: "node 3's decision log"}}
	h.Leaderships = []Leadership{{Partition: 0, Epoch: 0, Leader: 1, Source: "metadata"}, {Partition: 0, Epoch: 1, Leader: 2, Source: "metadata"}}
	h.Events = []Event{{ID: "c-2-7", Partition: 0, Epoch: 1}, {ID: "c-2-7", Partition: 0, Epoch: 1}} // one event delivered twice
	h.Faults = []Fault{{Kind: "sigkill-leader", Start: at(500), End: at(900)}}
	return h
}

func TestCheck_cleanHistory(t *testing.T) {
	r := Check(clean())
	if !r.OK() {
		t.Fatalf("anomalies in a clean history:\n%s", r)
	}
	if r.Acked != 10 || r.Unknown != 1 || r.Lost != 0 || r.Duplicates != 0 || r.Gaps != 0 {
		t.Errorf("counts: %s", r)
	}
	if got, want := r.LongestStall["sigkill-leader"], 3400*time.Millisecond; got != want {
		t.Errorf("longest stall = %v, want %v (from the fault's start at 0.5 s to the next ack at 3.9 s)", got, want)
	}
	t.Log(r)
}

// TestCheck_catchesCraftedAnomalies: each promise broken once in an
// otherwise clean history is reported, named, with its counts.
func TestCheck_catchesCraftedAnomalies(t *testing.T) {
	for _, tt := range []struct {
		name  string
		spoil func(h *History)
		want  string
		count func(Report) int
	}{
		{"a lost write", func(h *History) {
			// The last one, so no gap is left to report as well.
			h.Reads = append(h.Reads[:9], h.Reads[10:]...)
		}, "lost: record \"v9\"", func(r Report) int { return r.Lost }},
		{"a duplicate", func(h *History) {
			h.Produces = append(h.Produces, Produce{Value: "v10", Partition: 0, Completed: at(4500), Outcome: OK, Offset: 10})
			h.Reads = append(h.Reads, Read{0, 10, "v10"}, Read{0, 11, "v10"})
		}, "duplicate: record \"v10\"", func(r Report) int { return r.Duplicates }},
		{"an offset gap", func(h *History) {
			h.Reads = append(h.Reads, Read{0, 12, "gave-up"})
		}, "gap: partition 0: offsets 10 to 11", func(r Report) int { return r.Gaps }},
		{"two leaders in one epoch", func(h *History) {
			h.Leaderships = append(h.Leaderships, Leadership{Partition: 0, Epoch: 1, Leader: 1, Source: "node 1's produce answers"})
		}, "two leaders: partition 0 leader epoch 1: node 2", nil},
		{"a divergent offset", func(h *History) {
			h.Reads = append(h.Reads, Read{0, 4, "other"})
		}, "divergent: partition 0 offset 4", nil},
		{"an acknowledgement at the wrong offset", func(h *History) {
			h.Produces[2].Offset = 20
		}, "moved: record \"v2\"", nil},
		{"a commit going backwards", func(h *History) {
			h.Commits = append(h.Commits, Commit{"g", 0, 2, at(6000)})
		}, "commit backwards: group \"g\" partition 0: committed 2", nil},
		{"an election without its event", func(h *History) {
			h.Elections = append(h.Elections, Leadership{Partition: 0, Epoch: 2, Leader: 3, Source: "node 2's decision log"})
			h.Leaderships = append(h.Leaderships, Leadership{Partition: 0, Epoch: 2, Leader: 3, Source: "metadata"})
		}, "event missing: no leader_changed event for partition 0 leader epoch 2", nil},
		{"an election published twice", func(h *History) {
			h.Events = append(h.Events, Event{ID: "c-2-8", Partition: 0, Epoch: 1})
		}, "event duplicated: 2 leader_changed event ids", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := clean()
			tt.spoil(&h)
			r := Check(h)
			if r.OK() || !strings.Contains(r.String(), tt.want) {
				t.Fatalf("report does not say %q:\n%s", tt.want, r)
			}
			if tt.count != nil && tt.count(r) == 0 {
				t.Errorf("the count for %s is 0:\n%s", tt.name, r)
			}
			if len(r.Anomalies) != 1 {
				t.Errorf("%d anomalies, want just the crafted one:\n%s", len(r.Anomalies), r)
			}
		})
	}
}

// A fault after which nothing was acknowledged counts until the end.
func TestCheck_stallWithNoAcknowledgementAfterTheFault(t *testing.T) {
	h := History{
		Produces: []Produce{{Value: "a", Completed: at(0), Outcome: OK, Offset: 0}, {Value: "b", Completed: at(9000), Outcome: Unknown}},
		Reads:    []Read{{0, 0, "a"}},
		Faults:   []Fault{{Kind: "sigstop-leader", Start: at(1000), End: at(4000)}},
	}
	if got := Check(h).LongestStall["sigstop-leader"]; got != 8*time.Second {
		t.Errorf("stall = %v, want 8s (fault start to the last operation)", got)
	}
}

func TestCheck_boundsTheListedAnomalies(t *testing.T) {
	var h History
	for i := range 100 {
		h.Produces = append(h.Produces, Produce{Value: fmt.Sprint(i), Outcome: OK, Offset: int64(i)})
	}
	r := Check(h)
	if r.Lost != 100 || len(r.Anomalies) != maxAnomalies {
		t.Errorf("lost %d with %d lines, want 100 with %d", r.Lost, len(r.Anomalies), maxAnomalies)
	}
}

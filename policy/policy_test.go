package policy

import (
	"context"
	"testing"
	"time"
)

func replicas(spec ...Replica) []Replica { return spec }

func TestFirstISR_Decide(t *testing.T) {
	tests := []struct {
		name string
		in   Input
		want Decision
	}{
		{
			name: "leader timeout picks the first live in-sync replica in preference order",
			in: Input{Leader: 1, Reason: ReasonLeaderTimeout, Replicas: replicas(
				Replica{ID: 1, InISR: true}, Replica{ID: 2, Alive: true}, Replica{ID: 3, Alive: true, InISR: true})},
			want: Decision{Leader: 3},
		},
		{
			name: "no live in-sync replica leaves the partition offline",
			in: Input{Leader: 1, Reason: ReasonLeaderTimeout, Replicas: replicas(
				Replica{ID: 1, InISR: true}, Replica{ID: 2, Alive: true}, Replica{ID: 3, InISR: true})},
			want: Decision{},
		},
		{
			name: "unclean allows a live out-of-sync replica",
			in: Input{Leader: 1, Reason: ReasonLeaderTimeout, Unclean: true, Replicas: replicas(
				Replica{ID: 1, InISR: true}, Replica{ID: 2, Alive: true})},
			want: Decision{Leader: 2},
		},
		{
			name: "rebalance keeps a leader that is already the first in-sync replica",
			in: Input{Leader: 1, Reason: ReasonRebalance, Replicas: replicas(
				Replica{ID: 1, Alive: true, InISR: true}, Replica{ID: 2, Alive: true, InISR: true})},
			want: Decision{Keep: true},
		},
		{
			name: "rebalance moves back to the preferred replica",
			in: Input{Leader: 2, Reason: ReasonRebalance, Replicas: replicas(
				Replica{ID: 1, Alive: true, InISR: true}, Replica{ID: 2, Alive: true, InISR: true})},
			want: Decision{Leader: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FirstISR{}.Decide(context.Background(), []Input{tt.in})
			if err != nil || len(got) != 1 {
				t.Fatalf("Decide() = %v, %v", got, err)
			}
			if got[0].Leader != tt.want.Leader || got[0].Keep != tt.want.Keep {
				t.Errorf("Decide(%+v) = %+v, want leader %d keep %v", tt.in, got[0], tt.want.Leader, tt.want.Keep)
			}
			if err := Validate(tt.in, got[0]); err != nil {
				t.Errorf("Validate(own decision) = %v", err)
			}
		})
	}
}

func TestValidate_refusesUnsafeLeaders(t *testing.T) {
	in := Input{Topic: "t", Leader: 1, Replicas: replicas(
		Replica{ID: 1, InISR: true}, Replica{ID: 2, Alive: true}, Replica{ID: 3, InISR: true})}
	for _, tt := range []struct {
		name    string
		leader  uint64
		unclean bool
		ok      bool
	}{
		{"not a replica", 9, false, false},
		{"dead", 3, false, false},
		{"out of sync", 2, false, false},
		{"out of sync but unclean allowed", 2, true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in.Unclean = tt.unclean
			err := Validate(in, Decision{Leader: tt.leader})
			if (err == nil) != tt.ok {
				t.Errorf("Validate(leader %d, unclean %v) = %v, want ok %v", tt.leader, tt.unclean, err, tt.ok)
			}
		})
	}
}

func TestLiveness_countsOnlyHeartbeats(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewLiveness(1)
	l.now = func() time.Time { return now }
	l.start = now
	if !l.Alive(2, time.Second) {
		t.Errorf("a peer not heard yet must get a full timeout from the table's start")
	}
	now = now.Add(2 * time.Second)
	if l.Alive(2, time.Second) {
		t.Errorf("Alive(2) after 2s of silence with a 1s timeout = true")
	}
	l.Heartbeat(2)
	if !l.Alive(2, time.Second) || !l.Alive(1, time.Nanosecond) {
		t.Errorf("a heartbeat must make a peer alive, and the node itself is always alive")
	}
}

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

func TestValidate_keepAndNone(t *testing.T) {
	alive := func(id uint64, isr bool) Replica { return Replica{ID: id, Alive: true, InISR: isr} }
	dead := func(id uint64, isr bool) Replica { return Replica{ID: id, InISR: isr} }
	for _, tt := range []struct {
		name    string
		in      Input
		d       Decision
		cause   Cause // "" for valid
		unclean bool
	}{
		{"keep a live in-sync leader", Input{Leader: 1, Reason: ReasonRebalance, Replicas: replicas(alive(1, true), alive(2, true))},
			Decision{Keep: true}, "", false},
		{"keep in a leader_timeout round", Input{Leader: 1, Reason: ReasonLeaderTimeout, Replicas: replicas(alive(1, true), alive(2, true))},
			Decision{Keep: true}, CauseInvalidKeep, false},
		{"keep in a controlled_shutdown round", Input{Leader: 1, Reason: ReasonControlledShutdown, Replicas: replicas(dead(1, true), alive(2, true))},
			Decision{Keep: true}, CauseInvalidKeep, false},
		{"keep in a storage_failed round", Input{Leader: 1, Reason: ReasonStorageFailed, Replicas: replicas(dead(1, true), alive(2, true))},
			Decision{Keep: true}, CauseInvalidKeep, false},
		{"keep a dead leader", Input{Leader: 1, Reason: ReasonManual, Replicas: replicas(dead(1, true), alive(2, true))},
			Decision{Keep: true}, CauseInvalidKeep, false},
		{"keep a leader out of the ISR", Input{Leader: 1, Reason: ReasonManual, Replicas: replicas(alive(1, false), alive(2, true))},
			Decision{Keep: true}, CauseInvalidKeep, false},
		{"keep no leader", Input{Reason: ReasonManual, Replicas: replicas(alive(1, true))},
			Decision{Keep: true}, CauseInvalidKeep, false},
		{"none while an in-sync replica lives", Input{Leader: 1, Reason: ReasonLeaderTimeout, Replicas: replicas(dead(1, true), alive(2, true))},
			Decision{}, CauseInvalidNone, false},
		{"none with only out-of-sync replicas alive", Input{Leader: 1, Reason: ReasonLeaderTimeout, Replicas: replicas(dead(1, true), alive(2, false))},
			Decision{}, "", false},
		{"none with an out-of-sync replica alive and unclean on", Input{Leader: 1, Reason: ReasonLeaderTimeout, Unclean: true,
			Replicas: replicas(dead(1, true), alive(2, false))}, Decision{}, CauseInvalidNone, true},
		{"none with every replica dead", Input{Leader: 1, Reason: ReasonLeaderTimeout, Replicas: replicas(dead(1, true), dead(2, true))},
			Decision{}, "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.in, tt.d)
			if got := Cause(""); err != nil {
				got = CauseOf(err)
				if got != tt.cause {
					t.Errorf("Validate(%+v) = %v (cause %s), want cause %q", tt.d, err, got, tt.cause)
				}
			} else if tt.cause != "" {
				t.Errorf("Validate(%+v) = nil, want cause %s", tt.d, tt.cause)
			}
		})
	}
}

// TestFirstISR_alwaysValid: whatever first-isr answers passes Validate,
// over every combination of three replicas' alive and in-sync flags, every
// reason, leader and unclean setting: it is what a fallback decides.
func TestFirstISR_alwaysValid(t *testing.T) {
	for mask := 0; mask < 1<<6; mask++ {
		for _, reason := range []Reason{ReasonLeaderTimeout, ReasonControlledShutdown, ReasonRebalance, ReasonManual, ReasonStorageFailed} {
			for leader := uint64(0); leader <= 3; leader++ {
				for _, unclean := range []bool{false, true} {
					in := Input{Topic: "t", Leader: leader, Reason: reason, Unclean: unclean}
					for i := range 3 {
						r := Replica{ID: uint64(i + 1), Alive: mask&(1<<i) != 0, InISR: mask&(8<<i) != 0}
						if r.ID == leader && reason.LeaderLeaving() {
							r.Alive = false // as the controller builds the input
						}
						in.Replicas = append(in.Replicas, r)
					}
					if d := firstISR(in); Validate(in, d) != nil {
						t.Fatalf("first-isr on %+v = %+v, which Validate refuses: %v", in, d, Validate(in, d))
					}
				}
			}
		}
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

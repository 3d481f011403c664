package policy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Reason says why an election runs.
type Reason string

// Election reasons.
const (
	ReasonLeaderTimeout      Reason = "leader_timeout"
	ReasonControlledShutdown Reason = "controlled_shutdown"
	ReasonRebalance          Reason = "rebalance"
	ReasonManual             Reason = "manual"
)

// Replica is what a policy knows of one replica of a partition.
type Replica struct {
	ID           uint64
	Alive        bool
	HeartbeatAge time.Duration // since this node last heard from it; 0 for the deciding node itself
	InISR        bool
	Labels       map[string]string
	// LogEndOffset is the replica's log-end offset if known, else -1.
	LogEndOffset int64
}

// Input is one partition to decide.
type Input struct {
	Topic       string
	Partition   int32
	Replicas    []Replica // in preference order: the first is the preferred leader
	Leader      uint64    // the current leader, 0 for none
	LeaderEpoch int32
	Reason      Reason
	// Unclean allows a live replica outside the ISR (the topic sets
	// unclean.leader.election.enable); it may lose acknowledged records.
	Unclean bool
}

// Decision is a policy's answer for one partition.
type Decision struct {
	// Leader is the chosen leader; 0 with Keep false means no eligible
	// leader (the partition goes offline).
	Leader uint64
	// Keep leaves the current leader in place.
	Keep   bool
	Reason string // a short explanation for the decision log
	// Policy names who decided when a Policy delegates (a rule's module,
	// or first-isr after that module failed); "" means the Policy itself.
	Policy string
	// PolicyDigest identifies the module that decided, if one did.
	PolicyDigest string
}

// Policy chooses partition leaders. Decide gets a batch and answers one
// decision per input, in order. It must not keep the inputs. The controller
// validates every decision (Validate) and never trusts a policy: an invalid
// one falls back to FirstISR for that round.
type Policy interface {
	Name() string
	Decide(ctx context.Context, in []Input) ([]Decision, error)
}

// FirstISR is the built-in policy: the first replica in preference order
// that is alive and in the ISR, or none.
type FirstISR struct{}

var _ Policy = FirstISR{}

// Name implements Policy.
func (FirstISR) Name() string { return "first-isr" }

// Decide implements Policy.
func (FirstISR) Decide(_ context.Context, in []Input) ([]Decision, error) {
	out := make([]Decision, len(in))
	for i, p := range in {
		out[i] = firstISR(p)
	}
	return out, nil
}

func firstISR(p Input) Decision {
	if p.Reason == ReasonLeaderTimeout || p.Reason == ReasonControlledShutdown {
		for _, r := range p.Replicas {
			if r.ID != p.Leader && r.Alive && r.InISR {
				return Decision{Leader: r.ID, Reason: fmt.Sprintf("first in-sync replica alive (node %d)", r.ID)}
			}
		}
		if p.Unclean {
			for _, r := range p.Replicas {
				if r.ID != p.Leader && r.Alive {
					return Decision{Leader: r.ID, Reason: fmt.Sprintf("unclean: node %d is alive but out of sync", r.ID)}
				}
			}
		}
		return Decision{Reason: "no live in-sync replica"}
	}
	for _, r := range p.Replicas {
		if r.Alive && r.InISR {
			if r.ID == p.Leader {
				return Decision{Keep: true, Reason: "the current leader is the first in-sync replica"}
			}
			return Decision{Leader: r.ID, Reason: fmt.Sprintf("first in-sync replica alive (node %d)", r.ID)}
		}
	}
	return Decision{Keep: true, Reason: "no better replica"}
}

// ErrIneligible is wrapped by Validate's errors: the chosen leader may not
// lead the partition.
var ErrIneligible = errors.New("ineligible leader")

// Validate checks a decision against the safety rules: a new leader must
// be a replica, alive, and in the ISR unless the partition allows unclean
// elections.
func Validate(in Input, d Decision) error {
	if d.Keep || d.Leader == 0 {
		return nil
	}
	i := slices.IndexFunc(in.Replicas, func(r Replica) bool { return r.ID == d.Leader })
	switch {
	case i < 0:
		return fmt.Errorf("%w: node %d is not a replica of %s-%d", ErrIneligible, d.Leader, in.Topic, in.Partition)
	case !in.Replicas[i].Alive:
		return fmt.Errorf("%w: node %d is not alive", ErrIneligible, d.Leader)
	case !in.Replicas[i].InISR && !in.Unclean:
		return fmt.Errorf("%w: node %d is not in the ISR of %s-%d and unclean election is off", ErrIneligible, d.Leader, in.Topic, in.Partition)
	}
	return nil
}

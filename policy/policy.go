package policy

import (
	"context"
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
	// ReasonStorageFailed moves a partition off a leader whose log failed
	// (an fsync error): the leader lives but must not lead. Policy modules
	// see it as controlled_shutdown, whose meaning it shares.
	ReasonStorageFailed Reason = "storage_failed"
)

// LeaderLeaving reports whether, in an election for this reason, the
// current leader is dead or leaving and must not be chosen or kept.
func (r Reason) LeaderLeaving() bool {
	return r == ReasonLeaderTimeout || r == ReasonControlledShutdown || r == ReasonStorageFailed
}

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
	// Source says who decided when a Policy delegates (Rules: a rule's
	// module); a zero Source means the Policy itself.
	Source Source
	// Err, if set, says the policy could not decide this partition (its
	// module failed); the controller has first-isr decide it instead.
	Err error
}

// Source says which policy made a decision.
type Source struct {
	// Policy is the policy's name: a rule's module file, "first-isr", or
	// "operator" for a manual choice.
	Policy string
	// Digest identifies the module, "sha256:<hex>"; "" for the built-in.
	Digest string
	// Fallback is set when first-isr decided in place of a policy that
	// failed or answered something invalid.
	Fallback *Fallback
}

// Fallback is a decision first-isr made in place of another policy's.
type Fallback struct {
	Policy string // the policy that failed
	Digest string // its module's digest, if known
	Cause  Cause
	Err    string // exactly what went wrong
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

func firstISR(p Input) Decision { return FirstISROf(p, nil) }

// FirstISROf is first-isr's decision among the replicas allow admits (nil
// admits all): the first one alive and in the ISR (in a leader_timeout or
// controlled_shutdown round never the current leader), else with unclean
// elections the first one alive, else none. A current leader that is
// still the choice is kept.
func FirstISROf(p Input, allow func(Replica) bool) Decision {
	leaving := p.Reason.LeaderLeaving()
	firstAlive := -1 // for an unclean election
	for i := range p.Replicas {
		r := &p.Replicas[i]
		if !r.Alive || leaving && r.ID == p.Leader || allow != nil && !allow(*r) {
			continue
		}
		if r.InISR {
			if r.ID == p.Leader {
				return Decision{Keep: true, Reason: "the current leader is the first in-sync replica"}
			}
			return Decision{Leader: r.ID, Reason: "first in-sync replica alive (node " + uintText(r.ID) + ")"}
		}
		if firstAlive < 0 {
			firstAlive = i
		}
	}
	if p.Unclean && firstAlive >= 0 {
		id := p.Replicas[firstAlive].ID
		return Decision{Leader: id, Reason: "unclean: node " + uintText(id) + " is alive but out of sync"}
	}
	return Decision{Reason: "no live in-sync replica"}
}

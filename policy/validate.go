package policy

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Cause names why first-isr decided in place of another policy, as the
// decision log, the events and reeve_policy_fallbacks_total give it.
type Cause string

// Fallback causes. The first group is a policy that did not answer; the
// second an answer Validate refused.
const (
	CauseTrap        Cause = "trap"               // the module trapped
	CauseDeadline    Cause = "deadline"           // the call missed its deadline
	CauseBadAnswer   Cause = "bad_answer"         // the answer did not decode, or the module reported failure
	CauseClosed      Cause = "closed"             // the instance was replaced mid-call and no replacement was ready
	CauseNotLoaded   Cause = "not_loaded"         // the rule has no good module
	CauseError       Cause = "error"              // any other failure
	CauseWrongCount  Cause = "wrong_answer_count" // not one answer per partition
	CauseIneligible  Cause = "ineligible_leader"  // a leader that is not a live in-sync replica
	CauseInvalidKeep Cause = "invalid_keep"       // keep, where the current leader may not stay
	CauseInvalidNone Cause = "invalid_none"       // none, where a replica could lead
)

// A Causer is an error that names its fallback cause; package wasm's
// errors are.
type Causer interface{ FallbackCause() Cause }

// CauseOf names the fallback cause of a policy's error.
func CauseOf(err error) Cause {
	var c Causer
	switch {
	case errors.As(err, &c):
		return c.FallbackCause()
	case errors.Is(err, context.DeadlineExceeded):
		return CauseDeadline
	}
	return CauseError
}

// invalid is an error Validate returns.
type invalid struct {
	cause Cause
	msg   string
}

func (e *invalid) Error() string        { return e.msg }
func (e *invalid) FallbackCause() Cause { return e.cause }
func (e *invalid) Is(target error) bool { return target == ErrIneligible && e.cause == CauseIneligible }
func refuse(c Cause, format string, args ...any) error {
	return &invalid{c, fmt.Sprintf(format, args...)}
}

// ErrIneligible matches Validate's errors for a chosen leader that may not
// lead the partition.
var ErrIneligible = errors.New("ineligible leader")

// Validate checks a decision against the safety rules, whatever policy
// made it:
//   - a new leader must be a replica, alive, and in the ISR unless the
//     partition allows unclean elections;
//   - keep is valid only while the current leader is alive and in the ISR
//     (so never in a leader_timeout or controlled_shutdown round, whose
//     leader is not alive);
//   - none only when no alive replica may lead.
//
// Its errors name their Cause (CauseOf) and say exactly why.
func Validate(in Input, d Decision) error {
	switch {
	case d.Keep:
		i := slices.IndexFunc(in.Replicas, func(r Replica) bool { return r.ID == in.Leader })
		switch {
		case in.Leader == 0:
			return refuse(CauseInvalidKeep, "keep: %s-%d has no leader to keep", in.Topic, in.Partition)
		case in.Reason.LeaderLeaving():
			return refuse(CauseInvalidKeep, "keep: node %d is leaving %s-%d (%s)", in.Leader, in.Topic, in.Partition, in.Reason)
		case i < 0:
			return refuse(CauseInvalidKeep, "keep: leader %d is not a replica of %s-%d", in.Leader, in.Topic, in.Partition)
		case !in.Replicas[i].Alive:
			return refuse(CauseInvalidKeep, "keep: leader %d of %s-%d is not alive", in.Leader, in.Topic, in.Partition)
		case !in.Replicas[i].InISR:
			return refuse(CauseInvalidKeep, "keep: leader %d of %s-%d is not in the ISR", in.Leader, in.Topic, in.Partition)
		}
		return nil
	case d.Leader == 0:
		for _, r := range in.Replicas {
			switch {
			case r.Alive && r.InISR:
				return refuse(CauseInvalidNone, "none: node %d is alive and in the ISR and could lead %s-%d", r.ID, in.Topic, in.Partition)
			case r.Alive && in.Unclean:
				return refuse(CauseInvalidNone, "none: node %d is alive and could lead %s-%d (unclean election is on)", r.ID, in.Topic, in.Partition)
			}
		}
		return nil
	}
	i := slices.IndexFunc(in.Replicas, func(r Replica) bool { return r.ID == d.Leader })
	switch {
	case i < 0:
		return refuse(CauseIneligible, "ineligible leader: node %d is not a replica of %s-%d", d.Leader, in.Topic, in.Partition)
	case !in.Replicas[i].Alive:
		return refuse(CauseIneligible, "ineligible leader: node %d is not alive", d.Leader)
	case !in.Replicas[i].InISR && !in.Unclean:
		return refuse(CauseIneligible, "ineligible leader: node %d is not in the ISR of %s-%d and unclean election is off", d.Leader, in.Topic, in.Partition)
	}
	return nil
}

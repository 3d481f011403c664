package sdk

import (
	"time"

	"github.com/reeve-edge/reeve/wasm/abi"
)

// Reason says why an election runs.
type Reason string

// Election reasons, spelled as in reeve's decision log.
const (
	// LeaderTimeout means the leader stopped heartbeating. It is never
	// alive in the input, whatever its last heartbeat says.
	LeaderTimeout Reason = "leader_timeout"
	// ControlledShutdown means the leader is shutting down and hands its
	// partitions over. It is never alive in the input either.
	ControlledShutdown Reason = "controlled_shutdown"
	// Rebalance is the periodic check whether the partition has a better
	// leader than the one it has; keeping it is the usual answer.
	Rebalance Reason = "rebalance"
	// Manual means an operator asked for an election without naming a
	// node.
	Manual Reason = "manual"
)

// Replica is what the deciding node knows of one replica of a partition.
type Replica struct {
	ID uint64
	// Alive reports fresh heartbeats. The leader of a LeaderTimeout or
	// ControlledShutdown round is never alive.
	Alive bool
	InISR bool
	// Heard reports whether the deciding node has heard from the node
	// since it started. When it has not, HeartbeatAge is the largest
	// Duration, so a comparison that forgets to check Heard treats the
	// node as long silent.
	Heard bool
	// HeartbeatAge is the time since the deciding node last heard from
	// the node; 0 for the deciding node itself.
	HeartbeatAge time.Duration
	// LogEndOffset is the replica's log-end offset, or -1 when the
	// deciding node does not know it.
	LogEndOffset int64
	// Labels are the node's [node] labels, nil when it has none. Every
	// replica of the node shares one map, kept from batch to batch while
	// the labels do not change, so it must not be modified.
	Labels map[string]string
}

// Input is one partition to decide. It and its Replicas are reused for the
// next call, so a handler must not keep them after it returns.
type Input struct {
	Topic       string
	Partition   int32
	LeaderEpoch int32
	Leader      uint64 // the current leader, 0 for none
	Reason      Reason
	// Unclean reports that the topic allows a live replica outside the
	// ISR to lead (unclean.leader.election.enable); it may lose
	// acknowledged records.
	Unclean  bool
	Replicas []Replica // preference order: the first is the preferred leader
}

// Kind is what a decision does.
type Kind uint8

// Decision kinds; the values are the ABI's.
const (
	KindOffline Kind = Kind(abi.DecideNone)   // no eligible leader: the partition goes offline
	KindKeep    Kind = Kind(abi.DecideKeep)   // leave the current leader
	KindElect   Kind = Kind(abi.DecideLeader) // make Leader the leader
)

// Decision is a handler's answer for one partition. Build it with Elect,
// Keep or Offline.
type Decision struct {
	Kind   Kind
	Leader uint64 // the node to elect, for KindElect
	Reason string // a short explanation for reeve's decision log
}

// Elect returns a decision that makes node id the leader. reeve refuses it
// (and decides the partition with its built-in policy) unless id is a
// replica that is alive and in the ISR, or alive and the topic allows
// unclean election.
func Elect(id uint64, reason string) Decision {
	return Decision{Kind: KindElect, Leader: id, Reason: reason}
}

// Keep returns a decision that leaves the current leader in place.
func Keep(reason string) Decision { return Decision{Kind: KindKeep, Reason: reason} }

// Offline returns a decision that no replica may lead: the partition goes
// offline until an election finds one.
func Offline(reason string) Decision { return Decision{Kind: KindOffline, Reason: reason} }

// Handler decides one partition.
type Handler func(Input) Decision

// InitFunc receives the policy's settings (its TOML settings table, every
// value as a string); an error refuses the module.
type InitFunc func(settings map[string]string) error

// Handle registers the policy's handler. Call it from an init function: the
// module's package init functions run when reeve instantiates the module,
// before its first decision. A later call replaces the handler.
func Handle(h Handler) { rt.handler = h }

// Init registers a function that receives the policy's settings once, when
// reeve loads the module and before the first decision. Without one, any
// settings are accepted and ignored.
func Init(f InitFunc) { rt.initFunc = f }

// FirstISR returns the decision of reeve's built-in first-ISR policy for in,
// for handlers that fall back to it. It is FirstISROf(in, nil).
func FirstISR(in Input) Decision { return FirstISROf(in, nil) }

// FirstISROf returns the decision of reeve's built-in first-ISR policy
// among the replicas allow admits, so that excluding some nodes takes one
// line:
//
//	return sdk.FirstISROf(in, func(r sdk.Replica) bool { return r.Labels["maintenance"] != "true" })
//
// Its rules are those of policy.FirstISROf in reeve. Of the replicas allow
// admits, in preference order, and never the current leader in a
// LeaderTimeout or ControlledShutdown round: the first that is alive and
// in the ISR leads, and if that is the current leader the decision is to
// keep it; failing that, when the topic allows unclean election, the
// first that is alive; failing that, none, and the partition goes
// offline. A nil allow admits every replica.
//
// A predicate states a preference, not a safety rule: when it rules out
// every replica that could lead, the decision is none, which reeve refuses
// while some replica could lead, and its built-in first-ISR decides the
// partition instead, among all the replicas.
//
// Its reasons are the built-in's without the node ID, which the decision
// carries anyway: constant strings cost no allocation per decision.
func FirstISROf(in Input, allow func(Replica) bool) Decision {
	leaving := in.Reason == LeaderTimeout || in.Reason == ControlledShutdown
	for i := range in.Replicas {
		r := &in.Replicas[i]
		if r.Alive && r.InISR && !(leaving && r.ID == in.Leader) && (allow == nil || allow(*r)) {
			if r.ID == in.Leader {
				return Keep("the current leader is the first in-sync replica")
			}
			return Elect(r.ID, "first in-sync replica alive")
		}
	}
	if in.Unclean {
		for i := range in.Replicas {
			r := &in.Replicas[i]
			if r.Alive && !(leaving && r.ID == in.Leader) && (allow == nil || allow(*r)) {
				return Elect(r.ID, "unclean: alive but out of sync")
			}
		}
	}
	return Offline("no live in-sync replica")
}

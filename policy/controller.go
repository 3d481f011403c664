package policy

import (
	"context"
	"log/slog"
	"slices"
	"time"
)

// PartitionState is a partition as a controller sees it.
type PartitionState struct {
	Topic          string
	TopicID        [16]byte
	Partition      int32
	Replicas       []uint64 // preference order
	ISR            []uint64
	Leader         uint64 // 0 for none
	LeaderEpoch    int32
	PartitionEpoch int32
	Unclean        bool // the topic allows unclean elections
}

// Metadata is what a controller reads and changes. appliance adapts the
// Raft store to it, so this package needs no Raft.
type Metadata interface {
	// Controlled returns the partitions of every Raft group this node
	// leads: the ones it is the controller of.
	Controlled() []PartitionState
	// Elect commits leader (0 takes the partition offline) and isr for p,
	// if p's epochs are unchanged (a conditional Raft command).
	Elect(ctx context.Context, p PartitionState, leader uint64, isr []uint64) error
	// Labels returns a node's labels from its configuration.
	Labels(node uint64) map[string]string
	// Changed is signalled when the metadata or the set of groups this
	// node leads may have changed.
	Changed() <-chan struct{}
}

// Controller elects leaders for the partitions whose Raft group this node
// leads. For each partition it keeps a deadline at the leader's last
// heartbeat plus the timeout and sleeps until the earliest one, so a
// failover takes the timeout plus one Raft commit, not the timeout plus a
// polling interval.
type Controller struct {
	md       Metadata
	live     *Liveness
	policy   Policy
	self     uint64
	timeout  time.Duration
	deadline time.Duration // per policy call
	log      *slog.Logger
	// Decisions, if set, records every election this controller runs.
	Decisions *DecisionLog
}

// NewController returns a controller for node self.
func NewController(md Metadata, live *Liveness, p Policy, self uint64, timeout time.Duration, log *slog.Logger) *Controller {
	if p == nil {
		p = FirstISR{}
	}
	return &Controller{md: md, live: live, policy: p, self: self, timeout: timeout, deadline: 50 * time.Millisecond, log: log}
}

// offlineRetry bounds how long an offline partition waits before its
// replicas are looked at again.
const offlineRetry = time.Second

// Run elects leaders until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		now := time.Now()
		next := now.Add(c.timeout)
		var due []PartitionState
		for _, p := range c.md.Controlled() {
			switch {
			case p.Leader == c.self:
			case p.Leader == 0:
				due = append(due, p)
				next = minTime(next, now.Add(offlineRetry))
			default:
				d := c.live.LastSeen(p.Leader).Add(c.timeout)
				if !d.After(now) {
					due = append(due, p)
				} else {
					next = minTime(next, d)
				}
			}
		}
		if len(due) > 0 {
			c.elect(ctx, due, ReasonLeaderTimeout)
			next = minTime(next, time.Now().Add(offlineRetry))
		}
		t.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.md.Changed():
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// elect asks the policy about a batch of partitions, validates every
// answer, and commits the changes.
func (c *Controller) elect(ctx context.Context, parts []PartitionState, reason Reason) {
	start := time.Now()
	in := make([]Input, len(parts))
	for i, p := range parts {
		in[i] = c.input(p, reason)
	}
	pctx, cancel := context.WithTimeout(ctx, c.deadline)
	decisions, err := c.policy.Decide(pctx, in)
	cancel()
	policyName := c.policy.Name()
	if err != nil || len(decisions) != len(in) {
		c.log.Warn("election policy failed; using first-isr for this round", "policy", policyName, "err", err)
		decisions, _ = FirstISR{}.Decide(ctx, in)
		policyName = FirstISR{}.Name()
	}
	for i, d := range decisions {
		p := parts[i]
		if err := Validate(in[i], d); err != nil {
			c.log.Warn("election policy decision refused; using first-isr", "policy", policyName,
				"topic", p.Topic, "partition", p.Partition, "err", err)
			d = firstISR(in[i])
		}
		if d.Keep || d.Leader == p.Leader {
			continue
		}
		if d.Leader == 0 && p.Leader == 0 {
			continue // still offline
		}
		isr := p.ISR
		if d.Leader != 0 && !slices.Contains(p.ISR, d.Leader) {
			isr = []uint64{d.Leader} // unclean
		} else if d.Leader != 0 {
			// The old leader is dead: it leaves the ISR with the election,
			// so the new leader's high watermark does not wait for it.
			isr = slices.DeleteFunc(slices.Clone(p.ISR), func(r uint64) bool { return r == p.Leader })
		}
		ectx, ecancel := context.WithTimeout(ctx, 5*time.Second)
		err := c.md.Elect(ectx, p, d.Leader, isr)
		ecancel()
		rec := DecisionRecord{Time: time.Now(), Topic: p.Topic, Partition: p.Partition, Reason: reason, Policy: policyName,
			From: p.Leader, To: d.Leader, LeaderEpoch: p.LeaderEpoch + 1, Why: d.Reason, Input: summary(in[i]),
			LatencyMs: float64(time.Since(start).Microseconds()) / 1000, Committed: err == nil}
		if err != nil {
			rec.Error = err.Error()
		}
		c.Decisions.Add(rec)
		if err != nil {
			c.log.Warn("election not committed", "topic", p.Topic, "partition", p.Partition, "to", d.Leader, "err", err)
			continue
		}
		level := slog.LevelInfo
		if d.Leader == 0 {
			level = slog.LevelError
		}
		c.log.Log(ctx, level, "partition leader elected", "topic", p.Topic, "partition", p.Partition,
			"from", p.Leader, "to", d.Leader, "leader_epoch", p.LeaderEpoch+1, "reason", string(reason),
			"policy", policyName, "why", d.Reason, "latency", time.Since(start).String())
	}
}

func (c *Controller) input(p PartitionState, reason Reason) Input {
	in := Input{Topic: p.Topic, Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, Reason: reason, Unclean: p.Unclean}
	now := time.Now()
	for _, r := range p.Replicas {
		alive := c.live.Alive(r, c.timeout)
		if r == p.Leader && reason == ReasonLeaderTimeout {
			alive = false
		}
		in.Replicas = append(in.Replicas, Replica{
			ID: r, Alive: alive, HeartbeatAge: now.Sub(c.live.LastSeen(r)),
			InISR: slices.Contains(p.ISR, r), Labels: c.md.Labels(r),
		})
	}
	return in
}

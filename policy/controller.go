package policy

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
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

// Change is one leader change a controller commits.
type Change struct {
	Partition PartitionState // as the decision saw it
	Leader    uint64         // 0 takes the partition offline
	ISR       []uint64
	// Why the change was made, for the event it publishes.
	Reason       Reason
	Policy       string
	PolicyDigest string
	Detail       string // the policy's explanation
	// Fallback is set when first-isr decided in place of Policy's answer.
	Fallback   *Fallback
	Controller uint64
	LatencyMs  float64
}

// Metadata is what a controller reads and changes. appliance adapts the
// Raft store to it, so this package needs no Raft.
type Metadata interface {
	// Controlled returns the partitions of every Raft group this node
	// leads: the ones it is the controller of.
	Controlled() []PartitionState
	// Elect commits changes, each only if its partition's epochs are
	// unchanged (conditional Raft commands, one entry per group). It
	// returns an error per change, or one error if nothing could be
	// committed.
	Elect(ctx context.Context, changes []Change) ([]error, error)
	// Labels returns a node's labels from its configuration.
	Labels(node uint64) map[string]string
	// Changed is signalled when the metadata or the set of groups this
	// node leads may have changed.
	Changed() <-chan struct{}
}

// OffsetSource is implemented by Metadata that can tell where each
// replica's log ends. Elect asks it, bounded by offsetLookup, only when
// the policy wants the offsets (OffsetUser).
type OffsetSource interface {
	// LogEndOffsets returns, per partition index in parts, the known
	// log-end offset of each replica node; missing entries are unknown.
	LogEndOffsets(ctx context.Context, parts []PartitionState) []map[uint64]int64
}

// OffsetUser is implemented by a Policy that decides on log-end offsets.
type OffsetUser interface {
	WantsLogEndOffsets() bool
}

// Bounded is implemented by a Policy that says how long one Decide call
// may take (one made of several modules, each with its own deadline, whose
// number can change while running); the controller allows that much, or
// PolicyDeadline if that is longer.
type Bounded interface {
	DecideBound() time.Duration
}

// offsetLookup bounds the log-end offset lookup of one election round: a
// replica that does not answer in time is "unknown", never a delay.
const offsetLookup = 100 * time.Millisecond

// Controller elects leaders for the partitions whose Raft group this node
// leads. For each partition it keeps a deadline at the leader's last
// heartbeat plus the timeout and sleeps until the earliest one, so a
// failover takes the timeout plus one Raft commit, not the timeout plus a
// polling interval.
//
// A controller reads the time from its liveness table's clock
// (WithClock), never from the time package; its waits are runtime timers.
type Controller struct {
	md      Metadata
	live    *Liveness
	policy  Policy
	self    uint64
	timeout time.Duration
	log     *slog.Logger
	// PolicyDeadline bounds one Decide call; default 50 ms. A policy that
	// misses it is replaced by first-isr for that round.
	PolicyDeadline time.Duration
	// Decisions, if set, records every election this controller runs.
	Decisions *DecisionLog
	// RebalanceInterval, if positive, is how often partitions whose
	// preferred replica is alive and in sync are moved back to it.
	RebalanceInterval time.Duration
	// HoldDown keeps a rebalance from choosing a replica that has been in
	// the ISR for less than this, and from moving a partition more than
	// once per HoldDown. Elections after a failure never wait for it.
	HoldDown time.Duration
	// OnFallback, if set, is told of every policy that failed in a round
	// (first-isr decided in its place); it must not block.
	OnFallback func(FallbackReport)
	// BeforeLeaderTimeout, if set, is called before a round that moves
	// partitions off leaders whose heartbeats stopped, with those leaders,
	// so the node_down events come first (events.Recorder.ReportDown). It
	// may block only as long as the context allows (reportDownBudget).
	BeforeLeaderTimeout func(ctx context.Context, nodes []uint64)
	// Metrics receives the controller's election and fallback counters
	// (docs/metrics.md); NewController gives it a set nobody reads.
	Metrics *metrics.Set

	inSyncSince map[holdKey]inSync    // when the controller first saw a replica in a partition's ISR
	lastMoved   map[holdKey]time.Time // last rebalance of a partition (node 0)
	passes      uint64                // Run's passes, to tell replicas seen in the ISR on this one
	lastBalance time.Time
	lastPass    atomic.Int64 // unix nanoseconds at the start of Run's latest pass
}

type holdKey struct {
	id   [16]byte
	p    int32
	node uint64
}

// inSync is since when a replica has been in a partition's ISR, and the
// last pass that saw it there.
type inSync struct {
	since time.Time
	pass  uint64
}

// NewController returns a controller for node self.
func NewController(md Metadata, live *Liveness, p Policy, self uint64, timeout time.Duration, log *slog.Logger) *Controller {
	if p == nil {
		p = FirstISR{}
	}
	return &Controller{md: md, live: live, policy: p, self: self, timeout: timeout, PolicyDeadline: 50 * time.Millisecond, log: log,
		Metrics: metrics.NewSet()}
}

// offlineRetry bounds how long an offline partition waits before its
// replicas are looked at again.
const offlineRetry = time.Second

// commitRetry is how soon a round whose commit failed runs again.
const commitRetry = 100 * time.Millisecond

// Run elects leaders until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	c.registerMetrics()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		now := c.now()
		c.lastPass.Store(now.UnixNano())
		next := now.Add(c.timeout)
		var due []PartitionState
		parts := c.md.Controlled()
		if c.RebalanceInterval > 0 {
			c.watchISRs(now, parts)
		}
		for _, p := range parts {
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
			c.reportDown(ctx, due)
			retry := offlineRetry
			for _, rec := range c.Elect(ctx, due, ReasonLeaderTimeout) {
				if !rec.Committed {
					retry = commitRetry // e.g. this group's Raft leadership moved mid-commit
				}
			}
			next = minTime(next, c.now().Add(retry))
		}
		if c.RebalanceInterval > 0 {
			if now.Sub(c.lastBalance) >= c.RebalanceInterval {
				c.rebalance(ctx, now)
				c.lastBalance = now
			}
			next = minTime(next, c.lastBalance.Add(c.RebalanceInterval))
		}
		t.Reset(next.Sub(c.now()))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.md.Changed():
		}
	}
}

// reportDownBudget bounds how long a leader_timeout round waits for its
// node_down events to commit: a failover must not wait for the cluster
// group to elect a leader of its own.
const reportDownBudget = 250 * time.Millisecond

// reportDown tells BeforeLeaderTimeout the dead leaders of due.
func (c *Controller) reportDown(ctx context.Context, due []PartitionState) {
	if c.BeforeLeaderTimeout == nil {
		return
	}
	var gone []uint64
	for _, p := range due {
		if p.Leader != 0 && !slices.Contains(gone, p.Leader) {
			gone = append(gone, p.Leader)
		}
	}
	if len(gone) == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, reportDownBudget)
	defer cancel()
	c.BeforeLeaderTimeout(rctx, gone)
}

// LastPass returns when Run last started a pass over its partitions
// (zero before Run starts). Run passes at least once per leader timeout,
// so a much older time means the controller is stuck.
func (c *Controller) LastPass() time.Time {
	n := c.lastPass.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// watchISRs notes when each replica was first seen in each partition's
// ISR and forgets the ones out of it, whose hold-down starts again when
// they return. Run calls it on every pass, not only on rebalance passes
// (minutes apart), so a replica that left the ISR and came back between
// two of those does not count as in sync all along. The controller passes
// on every metadata change, so it sees each ISR change unless two are
// signalled as one.
func (c *Controller) watchISRs(now time.Time, parts []PartitionState) {
	if c.inSyncSince == nil {
		c.inSyncSince, c.lastMoved = map[holdKey]inSync{}, map[holdKey]time.Time{}
	}
	c.passes++
	for _, p := range parts {
		for _, r := range p.ISR {
			k := holdKey{p.TopicID, p.Partition, r}
			s, ok := c.inSyncSince[k]
			if !ok {
				s.since = now
			}
			s.pass = c.passes
			c.inSyncSince[k] = s
		}
	}
	for k, s := range c.inSyncSince {
		if s.pass != c.passes {
			delete(c.inSyncSince, k) // out of the ISR: its hold-down starts again
		}
	}
}

// rebalance moves partitions back to their preferred replica (the first in
// preference order) once it has been alive and in sync for the hold-down,
// at most once per hold-down per partition, through the policy.
func (c *Controller) rebalance(ctx context.Context, now time.Time) {
	var due []PartitionState
	for _, p := range c.md.Controlled() {
		if len(p.Replicas) == 0 || p.Leader == 0 {
			continue
		}
		pref := p.Replicas[0]
		s, inSync := c.inSyncSince[holdKey{p.TopicID, p.Partition, pref}]
		moved := c.lastMoved[holdKey{p.TopicID, p.Partition, 0}]
		if p.Leader == pref || !inSync || !slices.Contains(p.ISR, pref) || !c.live.Alive(pref, c.timeout) ||
			now.Sub(s.since) < c.HoldDown || now.Sub(moved) < c.HoldDown {
			continue
		}
		due = append(due, p)
		c.lastMoved[holdKey{p.TopicID, p.Partition, 0}] = now
	}
	if len(due) > 0 {
		c.Elect(ctx, due, ReasonRebalance)
	}
}

// now reads the controller's clock: its liveness table's.
func (c *Controller) now() time.Time { return c.live.now() }

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// Elect runs one election round over parts: the policy decides, every
// decision is validated (an invalid one falls back to first-isr), and the
// changes are committed as one conditional Raft entry per group. It returns
// a record for every partition whose leader the round changed or tried to
// change; they are in the decision log too. Safe for concurrent use.
func (c *Controller) Elect(ctx context.Context, parts []PartitionState, reason Reason) []DecisionRecord {
	start := c.now()
	in := make([]Input, len(parts))
	for i, p := range parts {
		in[i] = c.input(p, reason)
	}
	c.addOffsets(ctx, parts, in)
	bound := c.PolicyDeadline
	if b, ok := c.policy.(Bounded); ok {
		bound = max(bound, b.DecideBound())
	}
	pctx, cancel := context.WithTimeout(ctx, bound)
	decisions, err := c.policy.Decide(pctx, in)
	cancel()
	decisions = c.settle(in, decisions, err)
	return c.commit(ctx, start, parts, in, decisions, reason)
}

// ElectTo moves p's leadership to the operator's choice, if it is a live
// in-sync replica (or a live replica when the topic allows unclean
// elections). to 0 asks the policy instead.
func (c *Controller) ElectTo(ctx context.Context, p PartitionState, to uint64) (DecisionRecord, error) {
	if to == 0 {
		return first(p, c.Elect(ctx, []PartitionState{p}, ReasonManual), "the current leader is the policy's choice")
	}
	start := c.now()
	in := c.input(p, ReasonManual)
	d := Decision{Leader: to, Reason: fmt.Sprintf("operator asked for node %d", to), Source: Source{Policy: "operator"}}
	if err := Validate(in, d); err != nil {
		return DecisionRecord{}, err
	}
	return first(p, c.commit(ctx, start, []PartitionState{p}, []Input{in}, []Decision{d}, ReasonManual),
		"already the leader")
}

// first is a one-partition election's record and error; no record means
// nothing had to change, which is reported as why.
func first(p PartitionState, recs []DecisionRecord, why string) (DecisionRecord, error) {
	if len(recs) == 0 {
		return DecisionRecord{Topic: p.Topic, Partition: p.Partition, From: p.Leader, To: p.Leader,
			LeaderEpoch: p.LeaderEpoch, Committed: true, Why: why}, nil
	}
	return recs[0], recs[0].err
}

// commit turns decisions into leader changes, commits them in one batch,
// and records and logs each.
func (c *Controller) commit(ctx context.Context, start time.Time, parts []PartitionState, in []Input,
	decisions []Decision, reason Reason) []DecisionRecord {
	var changes []Change
	var idx []int
	for i, d := range decisions {
		p := parts[i]
		if d.Keep || d.Leader == p.Leader {
			continue
		}
		if d.Leader == 0 && (reason == ReasonControlledShutdown || reason == ReasonStorageFailed) {
			// No other replica can lead: the leaving node keeps the
			// partition while it lives (as Kafka does) rather than take it
			// offline now, which the offline retry would undo at once.
			// Once its heartbeats stop, leader_timeout decides.
			continue
		}
		isr := p.ISR
		switch {
		case d.Leader == 0:
		case !slices.Contains(p.ISR, d.Leader):
			isr = []uint64{d.Leader} // unclean
		case reason.LeaderLeaving():
			// The old leader is dead or leaving: it leaves the ISR with the
			// election, so the new leader's high watermark does not wait
			// for it.
			isr = slices.DeleteFunc(slices.Clone(p.ISR), func(r uint64) bool { return r == p.Leader })
		}
		detail := d.Reason
		if fb := d.Source.Fallback; fb != nil {
			detail += " (in place of " + fb.Policy + ": " + string(fb.Cause) + ": " + fb.Err + ")"
		}
		changes = append(changes, Change{Partition: p, Leader: d.Leader, ISR: isr, Reason: reason, Policy: d.Source.Policy,
			PolicyDigest: d.Source.Digest, Detail: detail, Fallback: d.Source.Fallback, Controller: c.self})
		idx = append(idx, i)
	}
	if len(changes) == 0 {
		return nil
	}
	decided := float64(c.now().Sub(start).Microseconds()) / 1000
	for j := range changes {
		changes[j].LatencyMs = decided
	}
	ectx, cancel := context.WithTimeout(ctx, commitTimeout)
	errs, err := c.md.Elect(ectx, changes)
	cancel()
	latency := c.now().Sub(start)
	recs := make([]DecisionRecord, len(changes))
	for j, ch := range changes {
		i, p := idx[j], ch.Partition
		e := err
		if e == nil && j < len(errs) {
			e = errs[j]
		}
		recs[j] = DecisionRecord{Time: c.now(), Topic: p.Topic, Partition: p.Partition, Reason: reason,
			Policy: decisions[i].Source.Policy, PolicyDigest: decisions[i].Source.Digest, From: p.Leader, To: ch.Leader, LeaderEpoch: p.LeaderEpoch + 1, Why: decisions[i].Reason,
			Input: summary(in[i]), LatencyMs: float64(latency.Microseconds()) / 1000, Committed: e == nil,
			Unclean: ch.Leader != 0 && !slices.Contains(p.ISR, ch.Leader), err: e}
		if fb := decisions[i].Source.Fallback; fb != nil {
			recs[j].FallbackFrom, recs[j].FallbackDigest, recs[j].FallbackCause, recs[j].FallbackError = fb.Policy, fb.Digest, fb.Cause, fb.Err
		}
		if e != nil {
			recs[j].Error = e.Error()
			c.log.Warn("election not committed", "topic", p.Topic, "partition", p.Partition, "to", ch.Leader, "err", e)
		} else {
			level := slog.LevelInfo
			if ch.Leader == 0 {
				level = slog.LevelError
			}
			c.log.Log(ctx, level, "partition leader elected", "topic", p.Topic, "partition", p.Partition,
				"from", p.Leader, "to", ch.Leader, "leader_epoch", p.LeaderEpoch+1, "reason", string(reason),
				"policy", decisions[i].Source.Policy, "why", decisions[i].Reason, "unclean", recs[j].Unclean, "latency", latency.String())
		}
		c.Decisions.Add(recs[j])
		c.countElection(recs[j])
	}
	return recs
}

// addOffsets fills in replicas' log-end offsets when the policy uses them
// and the metadata can find them.
func (c *Controller) addOffsets(ctx context.Context, parts []PartitionState, in []Input) {
	u, wants := c.policy.(OffsetUser)
	src, can := c.md.(OffsetSource)
	if !wants || !can || !u.WantsLogEndOffsets() {
		return
	}
	octx, cancel := context.WithTimeout(ctx, offsetLookup)
	defer cancel()
	offs := src.LogEndOffsets(octx, parts)
	for i := range in {
		if i >= len(offs) {
			break
		}
		for j, r := range in[i].Replicas {
			if o, ok := offs[i][r.ID]; ok {
				in[i].Replicas[j].LogEndOffset = o
			}
		}
	}
}

// commitTimeout bounds one batch of leader changes.
const commitTimeout = 5 * time.Second

func (c *Controller) input(p PartitionState, reason Reason) Input {
	in := Input{Topic: p.Topic, Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, Reason: reason, Unclean: p.Unclean}
	now := c.now()
	for _, r := range p.Replicas {
		alive := c.live.Alive(r, c.timeout)
		if r == p.Leader && reason.LeaderLeaving() {
			alive = false // dead, or leaving
		}
		in.Replicas = append(in.Replicas, Replica{
			ID: r, Alive: alive, HeartbeatAge: now.Sub(c.live.LastSeen(r)),
			InISR: slices.Contains(p.ISR, r), Labels: c.md.Labels(r), LogEndOffset: -1,
		})
	}
	return in
}

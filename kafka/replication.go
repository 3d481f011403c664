package kafka

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"time"
)

// Leader-side replication state of one partition: where each follower's log
// ends, when it last caught up, and the high watermark (HW) derived from
// them. The HW is the smallest log end offset over the in-sync replicas of
// the committed ISR (from Raft), so a replica the leader wants to drop
// still holds the HW back until the shrink is committed: a leader cut off
// from the quorum cannot shrink the ISR to itself and acknowledge acks=all
// writes alone.

// followerState is what the leader knows of one follower.
type followerState struct {
	leo           int64     // its log end offset, from its last fetch
	lastFetch     time.Time // when it last fetched
	leoAtFetch    int64     // the leader's log end offset at that fetch
	lastCaughtUp  time.Time // the last time its log reached the leader's end
	caughtUpKnown bool
}

// replicaState lives in partition, guarded by partition.mu.
type replicaState struct {
	hw          int64
	hwWake      chan struct{} // closed and replaced when the HW rises
	followers   map[int32]*followerState
	leaderSince time.Time     // when this node became leader; zero while it follows
	leaderEpoch int32         // the epoch it leads at
	demoted     chan struct{} // closed when this node stops leading at leaderEpoch
	isr         []int32       // the ISR the HW was last computed over
	self        int32
}

func (p *partition) initReplication() {
	p.repl.hw = p.log.LogStartOffset()
	p.repl.hwWake = make(chan struct{})
	p.repl.followers = make(map[int32]*followerState)
}

// highWatermark returns the partition's HW: the offset below which records
// are committed and visible to consumers.
func (p *partition) highWatermark() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return min(p.repl.hw, p.log.LogEndOffset())
}

// hwCh returns a channel closed when the HW next rises.
func (p *partition) hwCh() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.repl.hwWake
}

// errDemoted is returned to an acks=all produce whose partition stopped
// being led here while it waited: the batch may never be committed, and the
// client should retry with the new leader.
var errDemoted = errors.New("leadership moved while waiting for replication")

// waitHW waits until the HW passes offset: every in-sync replica has it.
func (p *partition) waitHW(ctx context.Context, offset int64, lost <-chan struct{}) error {
	p.mu.Lock()
	demoted := p.repl.demoted
	p.mu.Unlock()
	for {
		ch := p.hwCh()
		if p.highWatermark() > offset {
			return nil
		}
		select {
		case <-ch:
		case <-demoted:
			return errDemoted
		case <-lost:
			return errCutOff
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// followerFetched records a follower's fetch at offset (its log end) and
// returns whether the follower, outside the ISR, has now reached the HW
// and can join it.
func (p *partition) followerFetched(id int32, offset int64, isr []int32, self int32, now time.Time) (joins bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	leo := p.log.LogEndOffset()
	f := p.repl.followers[id]
	if f == nil {
		f = &followerState{}
		p.repl.followers[id] = f
	}
	// Kafka's rule: a follower that has fetched up to the leader's end is
	// caught up now; one that has fetched up to where the leader's end was
	// at its previous fetch was caught up at that previous fetch.
	switch {
	case offset >= leo:
		f.lastCaughtUp, f.caughtUpKnown = now, true
	case !f.lastFetch.IsZero() && offset >= f.leoAtFetch:
		f.lastCaughtUp, f.caughtUpKnown = f.lastFetch, true
	}
	f.leo, f.lastFetch, f.leoAtFetch = offset, now, leo
	p.advanceHWLocked(isr, self)
	return offset >= p.repl.hw && !slices.Contains(isr, id)
}

// advanceHW recomputes the HW after the leader's own log grew or the ISR
// changed, and returns whether it rose.
func (p *partition) advanceHW(isr []int32, self int32) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.advanceHWLocked(isr, self)
}

// recomputeHW recomputes the HW over the last known ISR, after an fsync
// made more of the leader's own log durable.
func (p *partition) recomputeHW() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.log != nil && !p.repl.leaderSince.IsZero() {
		p.advanceHWLocked(p.repl.isr, p.repl.self)
	}
}

func (p *partition) advanceHWLocked(isr []int32, self int32) bool {
	p.repl.isr, p.repl.self = isr, self
	// The leader counts only what is durable on its own disk (under
	// fsync = always), so no consumer reads a record that a power cut could
	// take back and that a later write could then reuse the offset of.
	hw := p.log.DurableOffset()
	for _, id := range isr {
		if id == self {
			continue
		}
		f := p.repl.followers[id]
		if f == nil {
			return false // not heard from yet: it holds the HW where it is
		}
		hw = min(hw, f.leo)
	}
	if hw <= p.repl.hw {
		return false
	}
	p.repl.hw = hw
	close(p.repl.hwWake)
	p.repl.hwWake = make(chan struct{})
	return true
}

// setFollowerHW is the follower side: it adopts the leader's HW, capped by
// what it holds.
func (p *partition) setFollowerHW(leaderHW int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	hw := min(leaderHW, p.log.DurableOffset())
	if hw > p.repl.hw {
		p.repl.hw = hw
		close(p.repl.hwWake)
		p.repl.hwWake = make(chan struct{})
	}
}

// lead marks this node the partition's leader at epoch; on a new epoch it
// forgets what it knew of followers. The HW stays: it only ever rises.
func (p *partition) lead(epoch int32, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.repl.leaderSince.IsZero() || p.repl.leaderEpoch != epoch {
		if p.repl.demoted != nil && !p.repl.leaderSince.IsZero() {
			close(p.repl.demoted)
		}
		p.repl.followers = make(map[int32]*followerState)
		p.repl.leaderSince, p.repl.leaderEpoch = now, epoch
		p.repl.demoted = make(chan struct{})
	}
}

// leading reports whether this node leads the partition as far as the
// partition knows.
func (p *partition) leading() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.repl.leaderSince.IsZero()
}

// follow marks this node a follower of the partition. Its producer state
// is dropped: the leader's appends reach it verbatim, so it is rebuilt from
// the log should this node lead again.
func (p *partition) follow() {
	p.mu.Lock()
	if !p.repl.leaderSince.IsZero() && p.repl.demoted != nil {
		close(p.repl.demoted)
		p.repl.demoted = nil
	}
	p.repl.leaderSince = time.Time{}
	p.mu.Unlock()
	p.forgetProducers()
}

// isrChanges returns the ISR the leader wants now: followers that have not
// caught up for lag leave it; replicas that reached the HW join it. It
// returns nil when nothing should change.
func (p *partition) isrChanges(meta Partition, self int32, lag time.Duration, now time.Time) []int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	want := make([]int32, 0, len(meta.Replicas))
	changed := false
	for _, r := range meta.Replicas {
		in := slices.Contains(meta.ISR, r)
		if r == self {
			if in {
				want = append(want, r)
			}
			continue
		}
		f := p.repl.followers[r]
		switch {
		case in && f != nil && f.caughtUpKnown && now.Sub(f.lastCaughtUp) > lag:
			changed = true // leaves: lagging
		case in && f == nil && now.Sub(p.repl.leaderSince) > lag:
			changed = true // leaves: never fetched since this node leads
		case in:
			want = append(want, r)
		case f != nil && f.leo >= p.repl.hw && now.Sub(f.lastFetch) < lag:
			want = append(want, r)
			changed = true // joins: caught up to the HW
		}
	}
	if !changed {
		return nil
	}
	return want
}

// minInsync is the topic's min.insync.replicas: its setting, else 2 for a
// replication factor of 3 or more and 1 below that.
func minInsync(t *Topic) int {
	if v, ok := t.Config["min.insync.replicas"]; ok {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	if t.ReplicationFactor >= 3 {
		return 2
	}
	return 1
}

package policy

import (
	"sync"
	"time"
)

// Liveness is the table of when this node last heard each peer's
// heartbeat. It is fed by heartbeats only, never by produce traffic, so an
// idle partition's healthy leader is never mistaken for a dead one.
//
// A table is also its controller's clock: a Controller reads the time
// from the table it is given (see WithClock), so the heartbeats it
// records and the deadlines armed from them are on one clock.
type Liveness struct {
	mu    sync.Mutex
	start time.Time
	seen  map[uint64]time.Time
	self  uint64
	now   func() time.Time
}

// A LivenessOption configures NewLiveness.
type LivenessOption func(*Liveness)

// WithClock makes a liveness table, and every Controller given it, read
// the time from now instead of time.Now.
//
// # Notes
//
// Waits are still measured by the runtime's timers, so now must advance
// with them: time.Now inside a testing/synctest bubble does, and so does
// the real clock shifted by a constant. A clock stepped by hand suits a
// table on its own, not a running Controller.
func WithClock(now func() time.Time) LivenessOption {
	return func(l *Liveness) { l.now = now }
}

// NewLiveness starts a table for node self. A peer not heard from since
// the table started counts as last heard at its start, so a restarted node
// waits a full timeout before it declares anyone dead.
func NewLiveness(self uint64, opts ...LivenessOption) *Liveness {
	l := &Liveness{seen: make(map[uint64]time.Time), self: self, now: time.Now}
	for _, o := range opts {
		o(l)
	}
	l.start = l.now()
	return l
}

// Heartbeat records a heartbeat from node.
func (l *Liveness) Heartbeat(node uint64) {
	l.mu.Lock()
	l.seen[node] = l.now()
	l.mu.Unlock()
}

// LastSeen returns when node was last heard (the table's start if never).
// The node itself is always seen now.
func (l *Liveness) LastSeen(node uint64) time.Time {
	if node == l.self {
		return l.now()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.seen[node]; ok {
		return t
	}
	return l.start
}

// Alive reports whether node was heard within timeout.
func (l *Liveness) Alive(node uint64, timeout time.Duration) bool {
	return l.now().Sub(l.LastSeen(node)) < timeout
}

package policy

import (
	"sync"
	"time"
)

// Liveness is the table of when this node last heard each peer's
// heartbeat. It is fed by heartbeats only, never by produce traffic, so an
// idle partition's healthy leader is never mistaken for a dead one.
type Liveness struct {
	mu    sync.Mutex
	start time.Time
	seen  map[uint64]time.Time
	self  uint64
	now   func() time.Time
}

// NewLiveness starts a table for node self. A peer not heard from since
// the table started counts as last heard at its start, so a restarted node
// waits a full timeout before it declares anyone dead.
func NewLiveness(self uint64) *Liveness {
	return &Liveness{start: time.Now(), seen: make(map[uint64]time.Time), self: self, now: time.Now}
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

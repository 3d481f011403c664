package policy

import (
	"testing"
	"time"
)

func TestLiveness_Alive(t *testing.T) {
	const timeout = 10 * time.Second
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		heard map[uint64]time.Duration // each node's last heartbeat, since the table started
		node  uint64
		at    time.Duration // since the table started
		want  bool
	}{
		{name: "a node never heard counts as heard when the table started", node: 1, at: timeout - time.Nanosecond, want: true},
		{name: "a node never heard is dead a timeout after the table started", node: 1, at: timeout, want: false},
		{name: "heard just inside the timeout", heard: map[uint64]time.Duration{1: 5 * time.Second}, node: 1, at: 15*time.Second - time.Nanosecond, want: true},
		{name: "heard exactly a timeout ago is dead", heard: map[uint64]time.Duration{1: 5 * time.Second}, node: 1, at: 15 * time.Second, want: false},
		{name: "another node's heartbeat does not count", heard: map[uint64]time.Duration{2: time.Hour}, node: 1, at: time.Hour, want: false},
		{name: "the node itself is always alive", node: 3, at: time.Hour, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := t0
			l := NewLiveness(3, WithClock(func() time.Time { return now }))
			for node, at := range tt.heard {
				now = t0.Add(at)
				l.Heartbeat(node)
			}
			now = t0.Add(tt.at)
			if got := l.Alive(tt.node, timeout); got != tt.want {
				t.Errorf("Alive(%d, %s) at %s = %v, want %v", tt.node, timeout, tt.at, got, tt.want)
			}
		})
	}
}

func TestLiveness_LastSeen(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	l := NewLiveness(3, WithClock(func() time.Time { return now }))
	now = t0.Add(time.Minute)
	l.Heartbeat(1)
	now = t0.Add(time.Hour)
	for _, tt := range []struct {
		node uint64
		want time.Time
	}{
		{1, t0.Add(time.Minute)}, // its heartbeat
		{2, t0},                  // never heard: the table's start
		{3, t0.Add(time.Hour)},   // itself: now
	} {
		if got := l.LastSeen(tt.node); !got.Equal(tt.want) {
			t.Errorf("LastSeen(%d) = %s, want %s", tt.node, got, tt.want)
		}
	}
}

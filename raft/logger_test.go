package raft

import (
	"fmt"
	"testing"
	"time"
)

// TestRepeatFilter: a line passes once per window, the next pass reports
// how many copies were held back, and distinct lines pass independently.
func TestRepeatFilter(t *testing.T) {
	f := &repeatFilter{seen: map[string]*repeat{}}
	t0 := time.Unix(1000, 0)
	if n, ok := f.pass("peer 3 refused", t0); !ok || n != 0 {
		t.Fatalf("first line: pass = %d, %v; want 0, true", n, ok)
	}
	for i := 1; i <= 5; i++ {
		if _, ok := f.pass("peer 3 refused", t0.Add(time.Duration(i)*time.Second)); ok {
			t.Fatalf("copy %d within the window passed", i)
		}
	}
	if _, ok := f.pass("peer 2 refused", t0.Add(time.Second)); !ok {
		t.Fatal("a different line was held back")
	}
	if n, ok := f.pass("peer 3 refused", t0.Add(repeatWindow)); !ok || n != 5 {
		t.Fatalf("after the window: pass = %d, %v; want 5, true", n, ok)
	}
	if _, ok := f.pass("peer 3 refused", t0.Add(repeatWindow+time.Second)); ok {
		t.Fatal("a copy right after the window's line passed")
	}
	// Lines whose window has passed are forgotten once 256 are remembered.
	for i := range 1000 {
		f.pass(fmt.Sprint("peer ", i, " refused"), t0.Add(time.Duration(i+2)*repeatWindow))
	}
	if len(f.seen) > 256 {
		t.Fatalf("%d lines remembered, want at most 256", len(f.seen))
	}
}

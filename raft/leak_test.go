package raft

import (
	"runtime"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// TestStore_Close_leavesNoGoroutine runs a three-node cluster, creates a
// topic and closes every store: once they are closed no goroutine runs the
// package's code (join and reconcile loops, the transport's accept loop and
// connections), and no goroutine is left at all, Dragonboat's included.
// The package's tests run one at a time (none calls t.Parallel), so the
// goroutines running at the start, what an earlier test left stopping,
// are the baseline.
func TestStore_Close_leavesNoGoroutine(t *testing.T) {
	baseline, before := goleak.IgnoreCurrent(), goroutineStacks()
	c := newTestCluster(t, 3)
	topic, err := c.stores[1].CreateTopic(ctxT(t), TopicSpec{Name: "leak", Partitions: 4, ReplicationFactor: 3})
	if err != nil {
		t.Fatalf("CreateTopic = %v", err)
	}
	c.topicEverywhere(topic)
	for id := range c.cfgs {
		c.stop(id)
	}
	for id, g := range goroutineStacks() {
		if _, ok := before[id]; !ok && strings.Contains(g, "github.com/reeve-edge/reeve/raft.") {
			t.Errorf("goroutine running the package's code after Close:\n%s", g)
		}
	}
	goleak.VerifyNone(t, baseline)
}

// goroutineStacks returns the stacks of every goroutine but the caller's,
// by id.
func goroutineStacks() map[string]string {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	for ; n == len(buf); n = runtime.Stack(buf, true) {
		buf = make([]byte, 2*len(buf))
	}
	stacks := map[string]string{}
	for i, g := range strings.Split(string(buf[:n]), "\n\n") {
		if i > 0 { // the caller's comes first
			id, _, _ := strings.Cut(strings.TrimPrefix(g, "goroutine "), " ")
			stacks[id] = g
		}
	}
	return stacks
}

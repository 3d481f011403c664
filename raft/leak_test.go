package raft

import (
	"testing"

	"github.com/reeve-edge/reeve/internal/leakcheck"
	"github.com/reeve-edge/reeve/internal/testpki"
)

// TestStore_Close_leavesNoGoroutine runs a three-node cluster, creates a
// topic and closes every store: once they are closed no goroutine runs the
// package's code (join and reconcile loops, the transport's accept loop and
// connections), and no goroutine is left at all, Dragonboat's included.
// The package's tests run one at a time (none calls t.Parallel), so the
// goroutines running at the start, what an earlier test left stopping,
// are the baseline.
func TestStore_Close_leavesNoGoroutine(t *testing.T) {
	closeLeavesNoGoroutine(t)
}

// TestStore_Close_leavesNoGoroutineOverTLS: the same with mutual TLS
// between the nodes.
func TestStore_Close_leavesNoGoroutineOverTLS(t *testing.T) {
	pki := testpki.New(t, "test")
	closeLeavesNoGoroutine(t, func(cfg *Config) { cfg.NodeCert = pki.NodeCert(t, cfg.NodeID) })
}

func closeLeavesNoGoroutine(t *testing.T, tweaks ...func(*Config)) {
	base := leakcheck.Take()
	c := newTestCluster(t, 3, tweaks...)
	topic, err := c.stores[1].CreateTopic(ctxT(t), TopicSpec{Name: "leak", Partitions: 4, ReplicationFactor: 3})
	if err != nil {
		t.Fatalf("CreateTopic = %v", err)
	}
	c.topicEverywhere(topic)
	for id := range c.cfgs {
		c.stop(id)
	}
	base.Check(t, "github.com/reeve-edge/reeve/raft.", "")
}

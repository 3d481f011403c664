// Package policy elects partition leaders: the liveness table fed by
// heartbeats, the controller that runs for the partitions whose Raft group
// this node leads, the Policy interface, the built-in first-ISR policy, and
// the safety validation every decision passes.
//
// It needs no network and no Raft: the controller reads and changes
// metadata through the Metadata interface it declares.
//
// Usage:
//
//	live := policy.NewLiveness(self)
//	// feed live.Heartbeat(node) from the heartbeat handler
//	c := policy.NewController(md, live, policy.FirstISR{}, self, 10*time.Second, log)
//	go c.Run(ctx)
package policy

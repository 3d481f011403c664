// Package policy owns every decision about who leads a partition: the
// liveness table fed by heartbeats; the controller that runs elections for
// the partitions whose Raft group this node leads; the Policy interface and
// the built-in first-ISR; the rules that choose a policy per topic and
// reload their modules (Rules, over a Modules that package wasm provides);
// the safety check every answer passes (Validate) and the one fallback
// path that replaces a failed or invalid answer with first-ISR's (with a
// typed Cause); decision records and their metrics.
//
// It needs no network and no Raft: the controller reads and changes
// metadata through the Metadata interface it declares, and takes its clock
// from the liveness table, so its tests run under testing/synctest.
//
// Usage:
//
//	live := policy.NewLiveness(self)
//	// feed live.Heartbeat(node) from the heartbeat handler
//	rules := policy.NewRules(cfgRules, wasmModules, 50*time.Millisecond, log)
//	rules.Reload(ctx)
//	c := policy.NewController(md, live, rules, self, 10*time.Second, log)
//	go c.Run(ctx)
//	go rules.Watch(ctx, 2*time.Second)
package policy

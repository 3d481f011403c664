// Command first-isr is reeve's built-in election policy written as a policy
// module: the same leader for every input, so it is both the baseline for
// measuring what running a module costs and a template to start from.
//
// For a leader timeout or a controlled shutdown it elects the first replica
// in preference order, other than the leader, that is alive and in the
// ISR; failing that, when the topic allows unclean election, the first
// other replica that is alive; failing that, none, and the partition goes
// offline. For a rebalance or a manual election it picks the first replica
// that is alive and in the ISR: it keeps the leader if that is the leader
// and elects it otherwise; with no such replica it keeps the leader.
//
// Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o first-isr.wasm ./wasm/examples/first-isr
package main

import "github.com/reeve-edge/reeve/wasm/sdk"

func init() { sdk.Handle(decide) }

func decide(in sdk.Input) sdk.Decision {
	if in.Reason == sdk.LeaderTimeout || in.Reason == sdk.ControlledShutdown {
		// The leader is never alive in these rounds; the check against it
		// is there for the day a leader that shuts down is still reported
		// alive, so that it is not handed its own partition back.
		for _, r := range in.Replicas {
			if r.ID != in.Leader && r.Alive && r.InISR {
				return sdk.Elect(r.ID, "first in-sync replica alive")
			}
		}
		if in.Unclean {
			for _, r := range in.Replicas {
				if r.ID != in.Leader && r.Alive {
					return sdk.Elect(r.ID, "unclean: alive but out of sync")
				}
			}
		}
		return sdk.Offline("no live in-sync replica")
	}
	for _, r := range in.Replicas {
		if r.Alive && r.InISR {
			if r.ID == in.Leader {
				return sdk.Keep("the current leader is the first in-sync replica")
			}
			return sdk.Elect(r.ID, "first in-sync replica alive")
		}
	}
	return sdk.Keep("no better replica")
}

func main() {}

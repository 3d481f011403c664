// Command first-isr is reeve's built-in election policy written as a policy
// module: the same leader for every input, so it is both the baseline for
// measuring what running a module costs and a template to start from.
//
// It takes the replicas in preference order, never the current leader
// when the leader timed out or is shutting down. The first that is alive
// and in the ISR leads: the decision keeps the current leader if that is
// it, and elects it otherwise. Failing that, when the topic allows unclean
// election, the first that is alive leads. Failing that, none does, and
// the partition goes offline. sdk.FirstISR decides the same, and
// sdk.FirstISROf among the replicas a predicate admits.
//
// Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o first-isr.wasm ./wasm/examples/first-isr
package main

import "github.com/reeve-edge/reeve/wasm/sdk"

func init() { sdk.Handle(decide) }

func decide(in sdk.Input) sdk.Decision {
	// The leader is never alive in these rounds; leaving it out anyway is
	// for the day a leader that shuts down is still reported alive, so
	// that it is not handed its own partition back.
	leaving := in.Reason == sdk.LeaderTimeout || in.Reason == sdk.ControlledShutdown
	for _, r := range in.Replicas {
		if r.Alive && r.InISR && !(leaving && r.ID == in.Leader) {
			if r.ID == in.Leader {
				return sdk.Keep("the current leader is the first in-sync replica")
			}
			return sdk.Elect(r.ID, "first in-sync replica alive")
		}
	}
	if in.Unclean {
		for _, r := range in.Replicas {
			if r.Alive && !(leaving && r.ID == in.Leader) {
				return sdk.Elect(r.ID, "unclean: alive but out of sync")
			}
		}
	}
	return sdk.Offline("no live in-sync replica")
}

func main() {}

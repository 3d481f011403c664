// Command least-lag is an election policy that elects the in-sync replica
// that has the most of the log: the eligible replica with the highest
// log-end offset the deciding node knows.
//
// A replica is eligible when it is alive and in the ISR and, when the
// leader timed out or is shutting down, is not the leader. Among eligible
// replicas the highest known log-end offset wins, and of equal offsets the
// first in preference order; a replica whose offset is unknown ranks below
// every known one. When the winner is the current leader (a rebalance or a
// manual election) the policy keeps it. When no eligible replica's offset
// is known, or no replica is eligible, it decides as the built-in first-ISR
// policy does, which covers unclean elections.
//
// It takes no settings. Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o least-lag.wasm ./wasm/examples/least-lag
package main

import "github.com/reeve-edge/reeve/wasm/sdk"

func init() { sdk.Handle(decide) }

func decide(in sdk.Input) sdk.Decision {
	leaderGone := in.Reason == sdk.LeaderTimeout || in.Reason == sdk.ControlledShutdown
	best := -1
	for i, r := range in.Replicas {
		if !r.Alive || !r.InISR || leaderGone && r.ID == in.Leader || r.LogEndOffset < 0 {
			continue
		}
		// Strictly greater, so that of equal offsets the first in
		// preference order stays.
		if best < 0 || r.LogEndOffset > in.Replicas[best].LogEndOffset {
			best = i
		}
	}
	if best < 0 {
		return sdk.FirstISR(in)
	}
	if r := in.Replicas[best]; r.ID != in.Leader {
		return sdk.Elect(r.ID, "the eligible replica with the highest log-end offset")
	}
	return sdk.Keep("the leader has the highest log-end offset")
}

func main() {}

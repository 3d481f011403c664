package main

import (
	"context"
	"testing"

	"github.com/reeve-edge/reeve/policy"
	"github.com/reeve-edge/reeve/wasm/sdk"
)

// TestMatchesBuiltIn checks decide and sdk.FirstISR against reeve's
// built-in policy on every combination of up to three replicas' liveness
// and ISR membership, every leader, reason and unclean setting; and
// sdk.FirstISROf against policy.FirstISROf with node 2 excluded.
func TestMatchesBuiltIn(t *testing.T) {
	reasons := map[sdk.Reason]policy.Reason{
		sdk.LeaderTimeout:      policy.ReasonLeaderTimeout,
		sdk.ControlledShutdown: policy.ReasonControlledShutdown,
		sdk.Rebalance:          policy.ReasonRebalance,
		sdk.Manual:             policy.ReasonManual,
	}
	cases := 0
	for n := range 4 {
		for states := range 1 << (2 * n) {
			for leader := range uint64(n + 2) { // 0 is none, n+1 no replica
				for reason, builtInReason := range reasons {
					for _, unclean := range []bool{false, true} {
						in := sdk.Input{Topic: "t", Reason: reason, Unclean: unclean, Leader: leader}
						pin := policy.Input{Topic: "t", Reason: builtInReason, Unclean: unclean, Leader: leader}
						for i := range n {
							r := sdk.Replica{ID: uint64(i + 1), Alive: states>>(2*i)&1 != 0, InISR: states>>(2*i)&2 != 0}
							in.Replicas = append(in.Replicas, r)
							pin.Replicas = append(pin.Replicas, policy.Replica{ID: r.ID, Alive: r.Alive, InISR: r.InISR})
						}
						ds, err := policy.FirstISR{}.Decide(context.Background(), []policy.Input{pin})
						if err != nil {
							t.Fatal(err)
						}
						for name, c := range map[string]struct {
							got  sdk.Decision
							want policy.Decision
						}{
							"decide":       {decide(in), ds[0]},
							"sdk.FirstISR": {sdk.FirstISR(in), ds[0]},
							"sdk.FirstISROf": {
								sdk.FirstISROf(in, func(r sdk.Replica) bool { return r.ID != 2 }),
								policy.FirstISROf(pin, func(r policy.Replica) bool { return r.ID != 2 }),
							},
						} {
							got, want := c.got, c.want
							same := got.Kind == sdk.KindKeep && want.Keep ||
								got.Kind == sdk.KindOffline && !want.Keep && want.Leader == 0 ||
								got.Kind == sdk.KindElect && !want.Keep && got.Leader == want.Leader && got.Leader != 0
							if !same {
								t.Errorf("%s(%+v) = %+v, built-in %+v", name, in, got, want)
							}
						}
						cases++
					}
				}
			}
		}
	}
	t.Logf("%d cases", cases)
}

package sdk_test

import (
	"fmt"

	"github.com/reeve-edge/reeve/wasm/sdk"
)

// A policy that never elects a node in maintenance, and otherwise decides
// as reeve's built-in first-ISR does, is one line. In a module, register
// it with sdk.Handle(decide) from an init function.
func ExampleFirstISROf() {
	decide := func(in sdk.Input) sdk.Decision {
		return sdk.FirstISROf(in, func(r sdk.Replica) bool { return r.Labels["maintenance"] != "true" })
	}

	// The leader, node 1, timed out; node 2 is next in preference order
	// but in maintenance.
	d := decide(sdk.Input{Topic: "orders", Reason: sdk.LeaderTimeout, Leader: 1, Replicas: []sdk.Replica{
		{ID: 1, InISR: true},
		{ID: 2, Alive: true, InISR: true, Labels: map[string]string{"maintenance": "true"}},
		{ID: 3, Alive: true, InISR: true},
	}})
	fmt.Println(d.Kind == sdk.KindElect, d.Leader, d.Reason)
	// Output: true 3 first in-sync replica alive
}

// Command dead-node elects the first replica that is not alive (the leader
// itself after a timeout), which the safety check must refuse (and decides
// as first-isr where every replica is alive).
package main

import "github.com/reeve-edge/reeve/wasm/sdk"

func init() {
	sdk.Handle(func(in sdk.Input) sdk.Decision {
		for _, r := range in.Replicas {
			if !r.Alive {
				return sdk.Elect(r.ID, "dead-node: dead on purpose")
			}
		}
		return sdk.FirstISR(in)
	})
}

func main() {}

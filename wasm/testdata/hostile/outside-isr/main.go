// Command outside-isr elects the first replica that is not in the ISR,
// whether or not the topic allows unclean election, which the safety check
// must refuse (and decides as first-isr where every replica is in sync).
package main

import "github.com/reeve-edge/reeve/wasm/sdk"

func init() {
	sdk.Handle(func(in sdk.Input) sdk.Decision {
		for _, r := range in.Replicas {
			if !r.InISR {
				return sdk.Elect(r.ID, "outside-isr: out of sync on purpose")
			}
		}
		return sdk.FirstISR(in)
	})
}

func main() {}
